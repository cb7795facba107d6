"""Stage 2, queries and pairs: generation (LLM or model-free), its prompt, filters, the answer cache, training
pairs and eval sets."""

ICT_MAX_WORDS = 24  # an ICT query's longest cut of its sentence, unless run.generate.ict_max_words says otherwise
