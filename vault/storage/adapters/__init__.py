"""Adapters of the `ObjectStore` port: `local` (a directory) and `s3` (MinIO or any S3)."""

__all__: list[str] = []
