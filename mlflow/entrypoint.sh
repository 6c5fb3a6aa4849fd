#!/bin/sh
# Starts `mlflow server`; with MLFLOW_AUTH_DATABASE_URI set, behind basic auth (`--app-name
# basic-auth`): the users' database comes from that variable and the first admin's password from
# MLFLOW_AUTH_ADMIN_PASSWORD (MLflow creates the admin on first start).
set -eu
set -- --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" --serve-artifacts \
  --host 0.0.0.0 --port 5000 --allowed-hosts '*' "$@"
if [ -n "${MLFLOW_AUTH_DATABASE_URI:-}" ]; then
  export MLFLOW_AUTH_CONFIG_PATH=/tmp/basic_auth.ini
  cat > "$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
  set -- --app-name basic-auth "$@"
fi
exec mlflow server "$@"
