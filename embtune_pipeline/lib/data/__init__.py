"""Stage 1, the corpus: reading sources, chunking, snapshots, sampling."""
