"""testimony-vault: the application (API, CLI, ledger, storage, use cases)."""

__all__: list[str] = []
