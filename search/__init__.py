"""The search index port, its adapters and the access-scoped query model."""

__all__: list[str] = []
