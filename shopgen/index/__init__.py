"""The index stage: enriched rows -> embeddings -> related -> Elasticsearch (indexing/ is the ES library)."""
