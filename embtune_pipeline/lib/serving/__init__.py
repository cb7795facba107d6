"""Vector indexes served from registered versions (no Dagster here): a table per (index, model version,
snapshot), its build plan (what to encode, what to reuse, what to carry over from the previous table), the
check before a switch, the pointer that names an index's current table (with its history), and which tables to
keep. The store itself is a resource (resources/vector_store.py); the asset, the CLI and serving.open_index
are glue over these."""
