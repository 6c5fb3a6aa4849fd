"""A model artifact that does not match the digest recorded at registration is refused (a
`rejected` lifecycle event with the reason), and the scorer keeps serving with the rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from conftest import Running, collect, docs, register
from mlflow import MlflowClient

from features.contract.topics import Topics
from streaming.registry import ARTIFACT_DIGEST_TAG, load_model_version

pytestmark = pytest.mark.integration


def test_registration_records_the_digest_and_a_mismatch_is_refused(
    kafka_bootstrap: str, topics: Topics, run_scorer: Callable[..., Running]
) -> None:
    name = f"iot-anomaly-trust-{uuid.uuid4().hex[:6]}"
    version = register(name, "anomaly")
    client = MlflowClient()
    digest = client.get_model_version(name, version).tags[ARTIFACT_DIGEST_TAG]
    assert len(digest) == 64
    assert load_model_version(name, version).version == version  # the digest matches

    client.set_model_version_tag(name, version, ARTIFACT_DIGEST_TAG, "0" * 64)  # tampered
    scorer = run_scorer(topics, (name,))
    rejected = docs(
        collect(
            kafka_bootstrap,
            topics.model_lifecycle,
            lambda ms: any(d["action"] == "rejected" for d in docs(ms)),
            timeout=60,
        )
    )
    reasons = " ".join(" ".join(d["reasons"]) for d in rejected if d["action"] == "rejected")
    assert "differs from the" in reasons and "recorded at registration" in reasons
    assert scorer.service.status()["models"][name]["champion"] is None
