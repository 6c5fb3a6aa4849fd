# The edaml application image: Dagster webserver, daemon and code location, the CLI and the
# simulator (`edaml[all]`). The scorer has a slim image of its own: docker/scorer.Dockerfile.
FROM python:3.11-slim
WORKDIR /opt/edaml
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.lock pyproject.toml README.md ./
# requirements.lock pins every extra (orchestration, postgres, serve) and the dev tools.
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.lock
COPY edaml ./edaml
COPY features ./features
COPY streaming ./streaming
COPY orchestration ./orchestration
COPY workspace.yaml ./
RUN uv pip install --system --no-cache --no-deps .
ENV DAGSTER_HOME=/opt/dagster/home
COPY docker/dagster.yaml /opt/dagster/home/dagster.yaml
