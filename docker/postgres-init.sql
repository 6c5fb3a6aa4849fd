-- One PostgreSQL server, two databases: Dagster's (POSTGRES_DB) and MLflow's.
CREATE DATABASE mlflow;
-- MLflow's basic-auth users and permissions.
CREATE DATABASE mlflow_auth;
