"""Index adapters: tantivy on local disk (embedded default) and Elasticsearch 8/9."""
