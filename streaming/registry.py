"""The one place that writes and reads model versions in MLflow.

Training (Dagster) calls `log_model_version` inside an active MLflow run; the scorer calls
`load_model_version` and `resolve_alias`. A version is only useful together with its model card
(`features.model_card`), which is logged as an artifact of the same run and whose key fields are
copied to version tags so that the MLflow UI shows them.

Models are serialised with skops, not pickle. The trusted types are computed from the dumped
model at logging time, and at loading time every type the version declares must come from an
allow-listed package (a crafted MLmodel file cannot make us load an arbitrary callable).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.sklearn
import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from features.model_card import MODEL_CARD_ARTIFACT, ModelCard

log = logging.getLogger(__name__)

#: Packages whose types a served model may contain (checked before deserialising).
TRUSTED_TYPE_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "builtins.",
    "collections.",
)

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelLoadError(RuntimeError):
    """A version could not be loaded (missing, unreadable, untrusted or without a card)."""


def trusted_types_of(model: Any) -> list[str]:
    """The types skops does not trust by default that `model` needs (exactly those)."""
    import skops.io  # ~1 s to import: only when a model is saved or loaded

    return sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


@functools.cache
def pip_requirements() -> list[str]:
    """The installed versions of what a served model needs (scikit-learn, skops, numpy, scipy)."""
    out = []
    for dist in ("scikit-learn", "skops", "numpy", "scipy"):
        try:
            out.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def log_model_version(
    model: Any,
    card: ModelCard,
    *,
    input_example: pd.DataFrame,
    tags: dict[str, str],
    alias: str | None = CHALLENGER,
) -> ModelVersion:
    """Log `model` and its card in the active run, register it as `card.model_name`, tag it.

    Returns the registered version (with `alias` set on it when given).
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_model_version must be called inside an active mlflow run")
    trusted = trusted_types_of(model)
    version_tags = {
        **tags,
        "feature_set_version": card.feature_set_version,
        "kind": card.kind,
        "threshold": repr(card.threshold),
    }
    info = mlflow.sklearn.log_model(
        sk_model=model,
        name="model",
        registered_model_name=card.model_name,
        input_example=input_example,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=trusted,
        # Explicit requirements: inferring them imports the model in a subprocess (~10 s).
        pip_requirements=pip_requirements(),
        # Given here, the tags travel with the version's creation request (one round trip).
        tags={k: str(v) for k, v in version_tags.items()},
    )
    mlflow.log_text(card.to_json().decode(), MODEL_CARD_ARTIFACT)
    version = str(info.registered_model_version)
    client = MlflowClient()
    if alias:
        client.set_registered_model_alias(card.model_name, alias, version)
    log.info("registered %s version %s (alias %s)", card.model_name, version, alias)
    return client.get_model_version(card.model_name, version)


def resolve_alias(name: str, alias: str, *, client: MlflowClient | None = None) -> str | None:
    """The version number `alias` points at, or None when the model or alias does not exist."""
    client = client or MlflowClient()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def set_alias(name: str, alias: str, version: str, *, client: MlflowClient | None = None) -> None:
    """Point `alias` of model `name` at `version` (a promotion when alias is `champion`)."""
    (client or MlflowClient()).set_registered_model_alias(name, alias, str(version))


@dataclass(frozen=True)
class LoadedModel:
    """A deserialised model version with its card, ready to score feature rows."""

    name: str
    version: str
    card: ModelCard
    model: Any

    def predict_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores of rows `X` (columns in `card.feature_names` order; NaN allowed).

        anomaly: negated `score_samples` (higher is more anomalous); failure-risk: P(failure).
        """
        frame: Any = X
        if hasattr(self.model, "feature_names_in_"):
            frame = pd.DataFrame(X, columns=list(self.card.feature_names))
        if self.card.kind == "anomaly":
            scores = -np.asarray(self.model.score_samples(frame), dtype=np.float64)
        else:
            scores = np.asarray(self.model.predict_proba(frame), dtype=np.float64)[:, 1]
        return scores


def _check_trusted(types: list[str]) -> list[str]:
    bad = [t for t in types if not t.startswith(TRUSTED_TYPE_PREFIXES)]
    if bad:
        raise ModelLoadError(f"model declares untrusted types: {bad}")
    return types


def load_model_version(
    name: str,
    version: str | None = None,
    alias: str | None = None,
    *,
    client: MlflowClient | None = None,
) -> LoadedModel:
    """Load one version (by number, or by alias) with its model card."""
    client = client or MlflowClient()
    try:
        if version is None:
            if alias is None:
                raise ValueError("give a version or an alias")
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, str(version))
        with tempfile.TemporaryDirectory(prefix="edaml-model-") as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{mv.version}", dst_path=tmp
                )
            )
            flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]
            if flavor.get("serialization_format") != mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS:
                raise ModelLoadError(f"{name} v{mv.version} is not serialised with skops")
            trusted = _check_trusted(list(flavor.get("skops_trusted_types") or []))
            import skops.io

            model = skops.io.load(local / flavor["pickled_model"], trusted=trusted)
        if not mv.run_id:
            raise ModelLoadError(f"{name} v{mv.version} has no run, hence no model card")
        card_text = mlflow.artifacts.load_text(f"runs:/{mv.run_id}/{MODEL_CARD_ARTIFACT}")
        card = ModelCard.from_json(card_text)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load {name} {version or alias}: {exc!r}") from exc
    return LoadedModel(name=name, version=str(mv.version), card=card, model=model)
