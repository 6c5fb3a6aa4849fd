"""The Helm chart lints, renders, and its manifests pass kubeconform -strict.

helm and kubeconform are built by `go install` from the Go module proxy into a cache folder
(once; later runs reuse the binaries). kubeconform normally downloads its JSON schemas from
GitHub, which CI cannot reach: the schemas come instead from the `kubernetes-validate` package
on PyPI (a dev dependency), which ships the Kubernetes JSON schemas of each release (made
resolvable offline by the `schemas` fixture). Strimzi's custom resources have no schema there:
those kinds alone are skipped (`-skip`), by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "edaml"
GO_BIN = Path.home() / ".cache" / "edaml" / "go-bin"
TOOLS = {
    "helm": "helm.sh/helm/v3/cmd/helm@v3.22.0",
    "kubeconform": "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0",
}
STRIMZI_KINDS = "Kafka,KafkaNodePool,KafkaUser"


def _go_tool(name: str) -> str:
    module = TOOLS[name]
    target = GO_BIN / module.rsplit("@", 1)[1] / name
    if not target.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        assert Path(go).exists(), "Go is needed to build helm and kubeconform (go install)"
        proc = subprocess.run(
            [go, "install", module],
            env={**os.environ, "GOBIN": str(target.parent), "CGO_ENABLED": "0"},
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert proc.returncode == 0, f"go install {module} failed:\n{proc.stderr[-3000:]}"
    return str(target)


@pytest.fixture(scope="module")
def helm() -> str:
    return _go_tool("helm")


@pytest.fixture(scope="module")
def kubeconform() -> str:
    return _go_tool("kubeconform")


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> str:
    """kubeconform's schema location: the newest Kubernetes release's strict schemas that
    kubernetes-validate ships. Its files refer to one another through their `$id`
    (https://kubernetes.io/api/...), which kubeconform would fetch: the copy made here drops
    the ids and points each `$ref` at the `_definitions.json` beside it, so every schema
    resolves offline."""
    import kubernetes_validate

    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    versions = sorted(
        (p.name.removesuffix("-local-strict") for p in root.glob("v*-local-strict")),
        key=lambda v: tuple(int(x) for x in v.lstrip("v").split(".")),
    )
    assert versions, f"no schemas under {root}"
    out = tmp_path_factory.mktemp("k8s-schemas")
    for f in (root / f"{versions[-1]}-local-strict").glob("*.json"):
        doc = json.loads(f.read_text())
        doc.pop("$id", None)
        text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
        (out / f.name).write_text(text)
    return f"{out}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"


def _template(helm: str, *sets: str) -> subprocess.CompletedProcess[str]:
    # A helm built by `go install` assumes Kubernetes 1.20 unless told otherwise.
    args = [helm, "template", "edaml", str(CHART), "--kube-version", "v1.33.0"]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def _docs(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


@pytest.mark.parametrize("sets", [(), ("strimzi.enabled=true", "kafka.topicPrefix=prod.")])
def test_lint_and_kubeconform_strict(
    helm: str, kubeconform: str, schemas: str, sets: tuple[str, ...]
) -> None:
    extra = [a for s in sets for a in ("--set", s)]
    lint = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *extra], capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = _template(helm, *sets)
    assert rendered.returncode == 0, rendered.stderr
    check = subprocess.run(
        [
            kubeconform,
            "-strict",
            "-summary",
            "-schema-location",
            schemas,
            "-skip",
            STRIMZI_KINDS,
            "-",
        ],
        input=rendered.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    kinds = {d["kind"] for d in _docs(rendered.stdout)}
    assert {"StatefulSet", "PodDisruptionBudget", "Deployment", "Service", "ConfigMap"} <= kinds
    # Everything but the skipped custom resources was validated against a schema.
    validated = len(
        [d for d in _docs(rendered.stdout) if d["kind"] not in STRIMZI_KINDS.split(",")]
    )
    assert f"Valid: {validated}," in check.stdout, check.stdout


def test_the_scorer_keeps_its_identity_and_is_probed(helm: str) -> None:
    rendered = _template(helm)
    assert rendered.returncode == 0, rendered.stderr
    (sts,) = [d for d in _docs(rendered.stdout) if d["kind"] == "StatefulSet"]
    pod = sts["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert "--instance-id=$(POD_NAME)" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    env = {e["name"]: e for e in container["env"]}
    assert env["EDAML_HOST"]["value"] == "0.0.0.0"
    assert env["EDAML_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert env["EDAML_KAFKA_PROPERTIES"]["value"] == "/etc/edaml/kafka/client.properties"


def test_more_scorers_than_partitions_is_refused(helm: str) -> None:
    rendered = _template(helm, "scorer.replicas=7", "kafka.partitions=6")
    assert rendered.returncode != 0
    assert "scorer.replicas (7) exceeds kafka.partitions (6)" in rendered.stderr
