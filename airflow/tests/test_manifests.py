"""The Kubernetes manifests in deploy/, checked without a cluster: each YAML document is a
Kubernetes object valid against the official JSON schemas of KUBERNETES_VERSION (bundled by
kubernetes-validate; `kubectl apply --dry-run=client` needs an API server to map kinds), and
every pod in them passes the restricted Pod Security Standard."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from pod_security import NEWEST_POLICY, restricted_violations

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# The oldest Kubernetes minor the manifests must work on; raise it with the oldest cluster.
KUBERNETES_VERSION = "1.33"
MANIFEST_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
# (file:kind, document) for every YAML document in deploy/.
DOCUMENTS = [
    (f"{path.relative_to(DEPLOY)}:{document.get('kind')}", document)
    for path in MANIFEST_FILES
    for document in yaml.safe_load_all(path.read_text())
    if document is not None
]


def of_kind(kind: str) -> list[dict]:
    return [document for _, document in DOCUMENTS if document.get("kind") == kind]


def pod_specs(document: dict) -> list[dict]:
    """The pod specs of a manifest: a Pod's own, a workload's template."""
    if document["kind"] == "Pod":
        return [document["spec"]]
    template = (document.get("spec") or {}).get("template")
    return [template["spec"]] if template else []


def test_deploy_holds_the_manifests_the_docs_use():
    names = {str(path.relative_to(DEPLOY)) for path in MANIFEST_FILES}
    assert {"kubernetes.yaml", "check-pod.yaml", "composer/configmap.yaml"} <= names


@pytest.mark.parametrize(
    "document", [document for _, document in DOCUMENTS], ids=[label for label, _ in DOCUMENTS]
)
def test_each_document_is_a_valid_kubernetes_object(document):
    # strict: a misspelt or misplaced field is an error, not silently dropped.
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_what_an_api_server_would():
    pod = of_kind("Pod")[0]
    misspelt = {**pod, "spec": {**pod["spec"], "serviceAcountName": "marketing-pipeline"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
    wrong_type = {**pod, "spec": {**pod["spec"], "activeDeadlineSeconds": "600"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


POD_SPECS = [
    pytest.param(spec, id=label) for label, document in DOCUMENTS for spec in pod_specs(document)
]


def test_there_is_a_pod_to_check():
    assert POD_SPECS


@pytest.mark.parametrize("policy_version", [KUBERNETES_VERSION, NEWEST_POLICY])
@pytest.mark.parametrize("pod_spec", POD_SPECS)
def test_every_pod_passes_the_restricted_pod_security_standard(pod_spec, policy_version):
    assert restricted_violations(pod_spec, policy_version) == []


def test_the_pipeline_namespace_enforces_the_restricted_standard():
    labels = [namespace["metadata"]["labels"] for namespace in of_kind("Namespace")]
    assert [label["pod-security.kubernetes.io/enforce"] for label in labels] == ["restricted"]


def test_the_airflow_role_allows_what_kubernetes_pod_operator_does():
    [role] = of_kind("Role")
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        *(("pods", verb) for verb in ("create", "get", "list", "watch", "delete", "patch")),
        ("pods/log", "get"),
        ("pods/exec", "create"),
        ("events", "list"),
    }
    assert needed <= granted
    bindings = of_kind("RoleBinding")
    assert [binding["roleRef"]["name"] for binding in bindings] == [role["metadata"]["name"]]
