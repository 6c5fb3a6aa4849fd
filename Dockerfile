# The edaml application image: Dagster webserver and daemon, the scorer and the simulator.
FROM python:3.11-slim
WORKDIR /opt/edaml
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.lock \
    && uv pip install --system --no-cache "dagster-postgres==0.29.27" "psycopg2-binary==2.9.13"
COPY edaml ./edaml
COPY features ./features
COPY streaming ./streaming
COPY orchestration ./orchestration
COPY workspace.yaml ./
RUN uv pip install --system --no-cache --no-deps .
ENV DAGSTER_HOME=/opt/dagster/home
COPY docker/dagster.yaml /opt/dagster/home/dagster.yaml
