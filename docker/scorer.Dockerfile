# The scorer's slim image: `edaml[serve]` only (the core and mlflow-skinny; no Dagster, no Great
# Expectations, no MLflow server). Versions pinned by requirements.lock (as constraints).
FROM python:3.11-slim
WORKDIR /opt/edaml
COPY requirements.lock pyproject.toml README.md workspace.yaml ./
COPY edaml ./edaml
COPY features ./features
COPY streaming ./streaming
COPY orchestration ./orchestration
COPY datasets ./datasets
RUN pip install --no-cache-dir uv \
    && uv pip install --system --no-cache -c requirements.lock ".[serve]" \
    && pip uninstall -y uv
RUN useradd --uid 10001 --create-home edaml
USER 10001
EXPOSE 8000
CMD ["edaml", "serve", "--metrics-port", "8000"]
