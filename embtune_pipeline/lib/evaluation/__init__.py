"""Stage 4, evaluation: retrieval, metrics and intervals, the report and its verdict."""
