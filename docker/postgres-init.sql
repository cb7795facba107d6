-- Run once by the postgres image on an empty volume: MLflow's backend store beside Dagster's storage.
CREATE DATABASE mlflow;
