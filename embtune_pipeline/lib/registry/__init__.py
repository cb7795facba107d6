"""Stage 5, the registry: MLflow tracking, model versions and aliases, index bindings, monitoring decisions."""
