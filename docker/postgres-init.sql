-- One PostgreSQL server, two databases: Dagster's (POSTGRES_DB) and MLflow's.
CREATE DATABASE mlflow;
