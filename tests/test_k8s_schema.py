"""The Kubernetes manifests, rendered by kubectl's kustomize (GPU base and CPU overlay), validated against the
Kubernetes 1.31 OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors too)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

K8S = Path(__file__).resolve().parents[1] / "deploy/k8s"
K8S_VERSION = "1.31"


def _render(overlay: str) -> list[dict]:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run([exe, "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("overlay", ["", "cpu"], ids=["gpu", "cpu"])
def test_rendered_manifests_validate_against_the_kubernetes_schema(overlay):
    import kubernetes_validate as kv
    docs = _render(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "Namespace"} <= kinds
    errors = []
    for d in docs:
        try:
            kv.validate(d, K8S_VERSION, strict=True)
        except kv.ValidationError as e:
            errors.append(f"{d['kind']}/{d['metadata']['name']}: {e.message}")
    assert not errors, "\n".join(errors)


def test_the_validator_refuses_a_broken_manifest():
    """The check above could fail: a typo'd field and a wrong type are both caught."""
    import kubernetes_validate as kv
    (dep,) = [d for d in _render("") if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway"]
    dep["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, K8S_VERSION, strict=True)
    dep["spec"]["replicas"] = 2
    dep["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, K8S_VERSION, strict=True)
