"""Every rendered document validates strictly against the Kubernetes schemas of 1.29 through
the newest version kubernetes-validate carries (offline; no API server)."""

from __future__ import annotations

import pytest
from packaging.version import Version

from tests.kube.variants import unique_documents, variants

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

MIN_VERSION = Version("1.29")


def _versions() -> list[str]:
    from kubernetes_validate.utils import all_versions

    minors = {".".join(v.split(".")[:2]) for v in all_versions()}
    return sorted((m for m in minors if Version(m) >= MIN_VERSION), key=Version)


VERSIONS = _versions()


def test_matrix_covers_every_version_from_1_29() -> None:
    assert VERSIONS[0] == "1.29"
    assert Version(VERSIONS[-1]) >= Version("1.31")
    assert len(variants()) >= 30


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_validates_strictly(version: str) -> None:
    failures = []
    kinds = set()
    for doc in unique_documents():
        kinds.add(doc["kind"])
        try:
            # strict: unknown fields are errors, not ignored.
            validated = kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
            continue
        assert validated == version
    assert not failures, "\n".join(failures[:20])
    assert kinds == {
        "Namespace",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "DaemonSet",
        "Deployment",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }


def test_strict_validation_catches_an_unknown_field() -> None:
    doc = next(d for d in unique_documents() if d["kind"] == "StatefulSet")
    bad = {**doc, "spec": {**doc["spec"], "replica": 3}}
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, VERSIONS[0], strict=True)
