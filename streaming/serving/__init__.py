"""The streaming scorer (`edaml serve`): `ScorerService`, its `ServeConfig` and feature sources.
The loop is `streaming.serving.service`; each of its seams has a module here."""

from streaming.serving.config import ServeConfig, default_instance_id, feature_source
from streaming.serving.service import ScorerService

__all__ = ["ScorerService", "ServeConfig", "default_instance_id", "feature_source"]
