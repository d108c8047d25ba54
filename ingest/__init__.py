"""Extraction of text and metadata from deposited files, with limits for hostile input."""

__all__: list[str] = []
