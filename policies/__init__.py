"""Access and consent rules: the policy engine and its default policy files."""

__all__: list[str] = []
