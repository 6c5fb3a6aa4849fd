"""The one place that writes and reads model versions in MLflow.

Training (Dagster) calls `log_model_version` inside an active MLflow run; the scorer calls
`load_model_version` and `resolve_alias`. A version is only useful together with its model card
(`features.ml.model_card`), which is logged as an artifact of the same run and whose key fields are
copied to version tags so that the MLflow UI shows them.

Models are serialised with skops, not pickle. The types skops does not trust by default are
computed from the dumped model at logging time and must each be on `TRUSTED_TYPES`, an exact
list of fully qualified names (no prefix: `builtins.` or `numpy.` would let a crafted model name
any callable of those packages). At loading time every type the version declares is checked
against the same list, and the artifact's SHA-256 must equal the digest recorded on the version
at registration (`ARTIFACT_DIGEST_TAG`): an artifact swapped in the store is refused.

Load failures say whether they are transient (`ModelLoadError.transient`: the registry or the
store unreachable, worth retrying) or deterministic (refuse the version).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
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

from features.ml.forest import prepare as prepare_forest
from features.ml.model_card import MODEL_CARD_ARTIFACT, ModelCard
from features.ml.scoring import scores as ml_scores

log = logging.getLogger(__name__)

#: Types beyond skops' defaults that the platform's model kinds need, exactly (measured with
#: `skops.io.get_untrusted_types` on the IsolationForest, gradient-boosting and logistic
#: pipelines). Model kinds added in `features.ml` extend it with their `SKOPS_TRUSTED_TYPES`.
BASE_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
#: The version tag holding the SHA-256 of the model artifact, recorded at registration.
ARTIFACT_DIGEST_TAG = "edaml.artifact_sha256"
_DETERMINISTIC_MLFLOW_CODES = frozenset(
    {
        "RESOURCE_DOES_NOT_EXIST",
        "INVALID_PARAMETER_VALUE",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "BAD_REQUEST",
        "INVALID_STATE",
        "UNAUTHENTICATED",
    }
)

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelLoadError(RuntimeError):
    """A version could not be loaded (missing, unreadable, untrusted or without a card).
    `transient`: the cause may go away by itself (network, server errors)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@functools.cache
def trusted_types() -> frozenset[str]:
    """`BASE_TRUSTED_TYPES` plus what `features.ml` declares for its model kinds."""
    extra: tuple[str, ...] = ()
    try:
        ml = importlib.import_module("features.ml")
        extra = tuple(getattr(ml, "SKOPS_TRUSTED_TYPES", ()))
    except ImportError:
        pass
    return BASE_TRUSTED_TYPES | frozenset(extra)


def artifact_digest(path: Path) -> str:
    """SHA-256 of a model artifact file, hex."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_transient(exc: BaseException) -> bool:
    """Whether a failure to reach or read the registry may go away by itself."""
    if isinstance(exc, MlflowException):
        return exc.error_code not in _DETERMINISTIC_MLFLOW_CODES
    return isinstance(exc, (OSError, ConnectionError, TimeoutError)) or type(
        exc
    ).__module__.startswith(("requests", "urllib3"))


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
    trusted = _check_trusted(trusted_types_of(model))
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
    record_artifact_digest(card.model_name, version, client=client)
    if alias:
        client.set_registered_model_alias(card.model_name, alias, version)
    log.info("registered %s version %s (alias %s)", card.model_name, version, alias)
    return client.get_model_version(card.model_name, version)


def _model_file(local: Path) -> tuple[Path, dict[str, Any]]:
    flavor: dict[str, Any] = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]
    return local / flavor["pickled_model"], flavor


def record_artifact_digest(name: str, version: str, *, client: MlflowClient | None = None) -> str:
    """Tag a registered version with the SHA-256 of its model file (as stored) and return it.
    Called by `log_model_version`; a version registered another way must call it too, or the
    scorer refuses to load it."""
    client = client or MlflowClient()
    with tempfile.TemporaryDirectory(prefix="edaml-model-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
        )
        digest = artifact_digest(_model_file(local)[0])
    client.set_model_version_tag(name, version, ARTIFACT_DIGEST_TAG, digest)
    return digest


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

    def __post_init__(self) -> None:
        if self.card.kind == "anomaly":
            prepare_forest(self.model)  # compile before the first (timed) prediction

    def predict_scores(self, X: np.ndarray, entities: np.ndarray | None = None) -> np.ndarray:
        """Scores of rows `X` (columns in `card.feature_names` order; NaN allowed), with the
        semantics of `features.ml.scoring.scores`: anomaly, higher is more anomalous (a
        per-entity model judges each row against its `entities` key's baseline); failure-risk,
        P(failure)."""
        frame: Any = X
        if hasattr(self.model, "feature_names_in_"):
            frame = pd.DataFrame(X, columns=list(self.card.feature_names))
        return ml_scores(self.model, frame, self.card.kind, entities)


def _check_trusted(types: list[str]) -> list[str]:
    allowed = trusted_types()
    bad = [t for t in types if t not in allowed]
    if bad:
        raise ModelLoadError(
            f"model declares types outside the allow-list: {bad} (add them, exactly, to "
            "streaming.registry.BASE_TRUSTED_TYPES or features.ml.SKOPS_TRUSTED_TYPES)"
        )
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
            path, flavor = _model_file(local)
            if flavor.get("serialization_format") != mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS:
                raise ModelLoadError(f"{name} v{mv.version} is not serialised with skops")
            trusted = _check_trusted(list(flavor.get("skops_trusted_types") or []))
            expected = (mv.tags or {}).get(ARTIFACT_DIGEST_TAG)
            if not expected:
                raise ModelLoadError(
                    f"{name} v{mv.version} has no {ARTIFACT_DIGEST_TAG} tag (register it with "
                    "streaming.registry.log_model_version or record_artifact_digest)"
                )
            actual = artifact_digest(path)
            if actual != expected:
                raise ModelLoadError(
                    f"{name} v{mv.version}: artifact digest {actual[:16]}… differs from the "
                    f"{expected[:16]}… recorded at registration"
                )
            import skops.io

            model = skops.io.load(path, trusted=trusted)
        if not mv.run_id:
            raise ModelLoadError(f"{name} v{mv.version} has no run, hence no model card")
        card_text = mlflow.artifacts.load_text(f"runs:/{mv.run_id}/{MODEL_CARD_ARTIFACT}")
        card = ModelCard.from_json(card_text)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load {name} {version or alias}: {exc!r}", transient=is_transient(exc)
        ) from exc
    return LoadedModel(name=name, version=str(mv.version), card=card, model=model)
