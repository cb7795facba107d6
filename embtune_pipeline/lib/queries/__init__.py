"""Stage 2, queries and pairs: generation (LLM or model-free), its prompt, filters, the answer cache, training
pairs and eval sets."""
