"""The runners: exit-code mapping, the local subprocess runner, the pod runners (kubernetes,
eks, gke): their pods, checked against the "restricted" Pod Security Standard."""

import base64
import importlib.util
import json
import textwrap
from types import SimpleNamespace

import pendulum
import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from marketing_pipeline_tasks.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)
from marketing_pipeline_tasks.connections import credentials_env
from marketing_pipeline_tasks.exit_codes import BUG, CONFIG, OK, raise_for_exit_code
from marketing_pipeline_tasks.interface import AIRFLOW_OUTCOMES, FAIL, RETRY, SKIP, SUCCESS
from marketing_pipeline_tasks.local_runner import PipelineBinaryOperator, parse_metrics
from marketing_pipeline_tasks.pod_runner import XCOM_FILE, PipelinePodMixin, operator_class
from marketing_pipeline_tasks.schedule import DS_TEMPLATE
from marketing_pipeline_tasks.settings import DATASETS
from pod_security import restricted_violations
from support import INTERFACE, PIPELINE_TASK_IDS, FakeTaskInstance, load_dag

# What the interface's `airflow` field means: the exception the task raises.
EXCEPTIONS = {SKIP: AirflowSkipException, FAIL: AirflowFailException, RETRY: AirflowException}
KILLED = 137  # by SIGKILL (OOM): a code the interface does not list
# exit code -> the exception the task raises: skip, fail without retry, or fail and retry.
EXIT_CODE_OUTCOMES = {
    exit_code.code: EXCEPTIONS[exit_code.airflow]
    for exit_code in INTERFACE.exit_codes
    if exit_code.airflow != SUCCESS
} | {KILLED: AirflowException}  # an unknown code is retried
QUARANTINED = INTERFACE.status("validate", "quarantined")
REJECTED = INTERFACE.status("validate", "rejected")


def test_the_interface_has_every_outcome_and_no_code_for_a_kill():
    assert {exit_code.airflow for exit_code in INTERFACE.exit_codes} == set(AIRFLOW_OUTCOMES)
    assert KILLED not in {exit_code.code for exit_code in INTERFACE.exit_codes}


def test_exit_code_zero_raises_nothing():
    assert OK == 0
    for exit_code in INTERFACE.exit_codes:
        if exit_code.airflow == SUCCESS:
            raise_for_exit_code(exit_code.code)


@pytest.mark.parametrize("exit_code, exception", EXIT_CODE_OUTCOMES.items())
def test_exit_code_mapping(exit_code, exception):
    with pytest.raises(exception) as raised:
        raise_for_exit_code(exit_code, "the binary's error")
    assert type(raised.value) is exception  # a retried failure must not be an AirflowFailException
    assert raised.value.exit_code == exit_code
    assert f"exit code {exit_code}" in str(raised.value)
    assert "the binary's error" in str(raised.value)
    meanings = {c.code: c.meaning for c in INTERFACE.exit_codes}
    assert meanings.get(exit_code, "unexpected exit code") in str(raised.value)


def test_parse_metrics_takes_the_last_non_empty_stdout_line():
    assert parse_metrics('{"a": 1}\nnoise\n{"status": "ok"}\n\n') == {"status": "ok"}
    assert parse_metrics("") is None
    assert parse_metrics("not json") is None
    assert parse_metrics("[1, 2]") is None


# --- the local runner, against a fake binary -------------------------------------------------


@pytest.fixture
def fake_binary(tmp_path):
    """A script standing in for the binary: logs to stderr, prints $FAKE_STDOUT, exits $FAKE_EXIT.

    It also records its arguments and the environment variables the tests look at.
    """
    script = tmp_path / "marketing-pipeline"
    script.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            echo '{"level":30,"msg":"starting"}' >&2
            printf '%s\\n' "$*" > "$FAKE_RECORD"
            env | grep -E '^(SCALE_FACTOR|PIPELINE_|AWS_|SNOWFLAKE_)' | sort >> "$FAKE_RECORD"
            printf '%s' "$FAKE_STDOUT"
            exit "$FAKE_EXIT"
            """
        )
    )
    script.chmod(0o755)
    return script


def run_local_task(monkeypatch, tmp_path, binary, exit_code, stdout, ti=None):
    monkeypatch.setenv("FAKE_EXIT", str(exit_code))
    monkeypatch.setenv("FAKE_STDOUT", stdout)
    monkeypatch.setenv("FAKE_RECORD", str(tmp_path / "record.txt"))
    task = PipelineBinaryOperator(
        task_id=DATASETS[0],
        binary=str(binary),
        arguments=["validate", DATASETS[0], "--ds", "2025-05-25"],
        env={"SCALE_FACTOR": "0.5"},
    )
    try:
        return task.execute({"ti": ti or FakeTaskInstance()})
    finally:
        record = (tmp_path / "record.txt").read_text().splitlines()
        assert record[0] == f"validate {DATASETS[0]} --ds 2025-05-25"
        assert "SCALE_FACTOR=0.5" in record


def test_local_runner_returns_the_last_stdout_line_as_the_xcom(monkeypatch, tmp_path, fake_binary):
    metrics = {"task": "validate", "status": QUARANTINED, "has_failure_delta": True}
    stdout = "an earlier line\n" + json.dumps(metrics) + "\n"
    ti = FakeTaskInstance()
    assert run_local_task(monkeypatch, tmp_path, fake_binary, 0, stdout, ti) == metrics
    assert ti.pushed == {}  # Airflow pushes the return value itself


def test_local_runner_streams_stderr_to_the_task_log(
    monkeypatch, tmp_path, fake_binary, caplog, capsys
):
    caplog.set_level("INFO")
    run_local_task(monkeypatch, tmp_path, fake_binary, 0, '{"status": "generated"}')
    # Airflow 3 logs tasks through structlog (captured as stdout here), Airflow 2 through logging.
    assert '{"level":30,"msg":"starting"}' in caplog.text + capsys.readouterr().out


@pytest.mark.parametrize("exit_code, exception", EXIT_CODE_OUTCOMES.items())
def test_local_runner_maps_exit_codes_and_still_pushes_the_metrics(
    monkeypatch, tmp_path, fake_binary, exit_code, exception
):
    metrics = {"status": REJECTED, "exit_code": exit_code, "error": "wrong columns"}
    ti = FakeTaskInstance()
    with pytest.raises(exception) as raised:
        run_local_task(monkeypatch, tmp_path, fake_binary, exit_code, json.dumps(metrics), ti)
    assert type(raised.value) is exception
    assert raised.value.exit_code == exit_code
    assert "wrong columns" in str(raised.value)
    # Branches and alerts read why it failed or skipped.
    assert ti.pushed == {"return_value": metrics}


def test_local_runner_treats_success_without_metrics_as_a_bug(monkeypatch, tmp_path, fake_binary):
    with pytest.raises(AirflowException) as raised:
        run_local_task(monkeypatch, tmp_path, fake_binary, 0, "")
    assert raised.value.exit_code == BUG


def test_local_runner_fails_without_retry_when_the_binary_is_missing(tmp_path):
    task = PipelineBinaryOperator(
        task_id="t", binary=str(tmp_path / "missing"), arguments=["transform"], env={}
    )
    with pytest.raises(AirflowFailException, match="PIPELINE_BINARY") as raised:
        task.execute({"ti": FakeTaskInstance()})
    assert raised.value.exit_code == CONFIG


def test_local_runner_passes_credentials_from_connections_and_drops_the_xcom_file(
    monkeypatch, tmp_path, fake_binary
):
    aws = {
        "conn_type": "aws",
        "login": "AKIAEXAMPLE",
        "password": "aws-secret",
        "extra": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))
    monkeypatch.setenv("PIPELINE_XCOM_FILE", "/airflow/xcom/return.json")
    run_local_task(monkeypatch, tmp_path, fake_binary, 0, "{}")
    record = (tmp_path / "record.txt").read_text().splitlines()
    assert "AWS_ACCESS_KEY_ID=AKIAEXAMPLE" in record
    assert "AWS_SECRET_ACCESS_KEY=aws-secret" in record
    assert "AWS_REGION=eu-west-1" in record
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:9000" in record
    assert not any(line.startswith("PIPELINE_XCOM_FILE=") for line in record)


def test_snowflake_connection_becomes_snowflake_variables(monkeypatch):
    pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    key_pair = {
        "conn_type": "snowflake",
        "login": "PIPELINE_USER",
        "password": "key-passphrase",
        "extra": {
            "account": "xy12345",
            "warehouse": "PIPELINE_WH",
            "database": "MARKETING",
            "role": "PIPELINE_ROLE",
            "private_key_content": base64.b64encode(pem.encode()).decode(),
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(key_pair))
    assert credentials_env() == {
        "SNOWFLAKE_ACCOUNT": "xy12345",
        "SNOWFLAKE_USER": "PIPELINE_USER",
        "SNOWFLAKE_ROLE": "PIPELINE_ROLE",
        "SNOWFLAKE_WAREHOUSE": "PIPELINE_WH",
        "SNOWFLAKE_DATABASE": "MARKETING",
        "SNOWFLAKE_PRIVATE_KEY": pem,
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "key-passphrase",
    }
    password = {"conn_type": "snowflake", "login": "U", "password": "pw", "extra": {"account": "a"}}
    monkeypatch.setenv("AIRFLOW_CONN_SNOWFLAKE_DEFAULT", json.dumps(password))
    assert credentials_env() == {
        "SNOWFLAKE_ACCOUNT": "a",
        "SNOWFLAKE_USER": "U",
        "SNOWFLAKE_PASSWORD": "pw",
    }


def test_no_connections_means_no_credential_variables():
    assert credentials_env() == {}


# --- the pod runner, built without a cluster -------------------------------------------------


class StubKubernetesHook:
    """Answers what building a pod asks the hook, with no cluster and no kube config."""

    is_in_cluster = False

    def get_namespace(self):
        return None

    def get_xcom_sidecar_container_image(self):
        return "alpine:3"

    def get_xcom_sidecar_container_resources(self):
        return None

    def get_xcom_sidecar_container_security_context(self):
        return None


@pytest.fixture
def stub_hook(monkeypatch):
    monkeypatch.setattr(operator_class("kubernetes"), "hook", StubKubernetesHook())


def render_and_build_pod(dag, task_id):
    task = dag.get_task(task_id)
    ti = FakeTaskInstance(task_id=task_id)
    context = {
        "dag_run": SimpleNamespace(logical_date=pendulum.datetime(2025, 5, 25, tz="UTC")),
        "run_id": ti.run_id,
        "params": {"scale_factor": 2, "defect_rate": 0},
        "dag": dag,
        "task": task,
        "ti": ti,
    }
    task.render_template_fields(context)
    return task.build_pod_request_obj(context)


def test_every_pipeline_task_is_a_pod_in_production(kubernetes_dag):
    pod_tasks = [t for t in kubernetes_dag.tasks if isinstance(t, KubernetesPodOperator)]
    assert sorted(task.task_id for task in pod_tasks) == sorted(PIPELINE_TASK_IDS)
    for task in pod_tasks:
        assert isinstance(task, PipelinePodMixin)
        assert task.image == "registry/mp:1.2.3"
        assert task.cmds == [INTERFACE.binary]
        assert task.arguments == [*task.task_id.split("."), "--ds", DS_TEMPLATE]
        assert task.do_xcom_push is True
        assert task.namespace == "marketing-pipeline"
        assert task.service_account_name == "marketing-pipeline"
        # The provider's own features, not overrides.
        assert task.skip_on_exit_code == [99]
        assert task.log_events_on_failure is True
        assert task.startup_timeout_seconds == 600
        assert task.active_deadline_seconds == 7200


def pod_spec_dict(pod: k8s.V1Pod) -> dict:
    """The pod spec as the Kubernetes API receives it (camelCase JSON)."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)["spec"]


def test_every_pod_passes_the_restricted_pod_security_standard(kubernetes_dag, stub_hook):
    for task_id in PIPELINE_TASK_IDS:
        pod = render_and_build_pod(kubernetes_dag, task_id)
        assert restricted_violations(pod_spec_dict(pod)) == [], task_id
        # The binary may write only its temp dir and working dir, both emptyDirs.
        base = pod.spec.containers[0]
        mounts = {m.mount_path: m.name for m in base.volume_mounts}
        empty_dirs = {v.name for v in pod.spec.volumes if v.empty_dir is not None}
        assert {mounts["/tmp"], mounts["/work"]} <= empty_dirs
        assert base.security_context.read_only_root_filesystem is True
        assert pod.spec.active_deadline_seconds == 7200


def test_pod_spec_of_a_task(kubernetes_dag, stub_hook):
    # A dataset with an underscore: pod names may not have one.
    dataset = next(name for name in DATASETS if "_" in name)
    task_id = f"validate.{dataset}"
    pod = render_and_build_pod(kubernetes_dag, task_id)
    container = pod.spec.containers[0]
    assert pod.metadata.name.startswith(f"marketing-pipeline-validate-{dataset.replace('_', '-')}")
    assert pod.metadata.namespace == "marketing-pipeline"
    assert pod.spec.service_account_name == "marketing-pipeline"
    assert pod.spec.restart_policy == "Never"
    assert container.image == "registry/mp:1.2.3"
    assert container.command == [INTERFACE.binary]
    assert container.args == ["validate", dataset, "--ds", "2025-05-25"]
    env = {var.name: var.value for var in container.env}
    assert env == {
        "SCALE_FACTOR": "2",
        "PIPELINE_DEFECT_RATE": "0",
        "PIPELINE_XCOM_FILE": XCOM_FILE,
        "AIRFLOW_CTX_DAG_ID": "marketing_pipeline",
        "AIRFLOW_CTX_TASK_ID": task_id,
        "AIRFLOW_CTX_DAG_RUN_ID": "manual__2025-05-25",
    }
    assert [
        source.config_map_ref.name for source in container.env_from if source.config_map_ref
    ] == ["marketing-pipeline-config"]
    assert [source.secret_ref.name for source in container.env_from if source.secret_ref] == [
        "marketing-pipeline-secrets"
    ]
    assert container.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert container.resources.limits == {"memory": "8Gi"}
    # do_xcom_push: a sidecar shares /airflow/xcom with the binary's container.
    assert [c.name for c in pod.spec.containers] == ["base", "airflow-xcom-sidecar"]
    assert "/airflow/xcom" in [mount.mount_path for mount in container.volume_mounts]
    # No credential in the pod spec: they come from the Secret.
    assert not any(name.startswith(("AWS_", "SNOWFLAKE_")) for name in env)


def test_pod_settings_come_from_the_environment(monkeypatch, stub_hook):
    dag = load_dag(
        monkeypatch,
        PIPELINE_RUNNER="kubernetes",
        PIPELINE_NAMESPACE="data",
        PIPELINE_SERVICE_ACCOUNT="pipeline-sa",
        PIPELINE_CONFIGMAP="mp-settings",
        PIPELINE_SECRET="mp-credentials",
        PIPELINE_POD_CPU="250m",
        PIPELINE_POD_MEMORY="512Mi",
        PIPELINE_POD_MEMORY_LIMIT="1Gi",
        PIPELINE_POD_STARTUP_TIMEOUT_S="900",
        PIPELINE_TASK_TIMEOUT_S="1800",
        PIPELINE_K8S_CONN_ID="prod_cluster",
        PIPELINE_K8S_CONFIG_FILE="/secrets/kubeconfig",
        PIPELINE_K8S_CLUSTER_CONTEXT="prod",
        PIPELINE_K8S_IN_CLUSTER="false",
    )
    task = dag.get_task("transform")
    pod = render_and_build_pod(dag, "transform")
    container = pod.spec.containers[0]
    assert pod.metadata.namespace == "data"
    assert pod.spec.service_account_name == "pipeline-sa"
    assert container.args == ["transform", "--ds", "2025-05-25"]
    refs = [s.config_map_ref or s.secret_ref for s in container.env_from]
    assert [ref.name for ref in refs] == ["mp-settings", "mp-credentials"]
    assert container.resources.requests == {"cpu": "250m", "memory": "512Mi"}
    assert container.resources.limits == {"memory": "1Gi"}
    assert task.startup_timeout_seconds == 900
    assert pod.spec.active_deadline_seconds == 1800
    assert task.execution_timeout.total_seconds() == 1800
    assert task.kubernetes_conn_id == "prod_cluster"
    assert task.config_file == "/secrets/kubeconfig"
    assert task.cluster_context == "prod"
    assert task.in_cluster is False


@pytest.mark.parametrize(
    "runner, settings, provider_class, cluster",
    [
        (
            "eks",
            {"PIPELINE_EKS_CLUSTER": "data", "PIPELINE_EKS_REGION": "eu-west-1"},
            "EksPodOperator",
            {"cluster_name": "data", "region": "eu-west-1", "aws_conn_id": "aws_default"},
        ),
        pytest.param(
            "gke",
            {
                "PIPELINE_GKE_CLUSTER": "data",
                "PIPELINE_GKE_LOCATION": "europe-west1",
                "PIPELINE_GKE_PROJECT": "acme-data",
            },
            "GKEStartPodOperator",
            {
                "cluster_name": "data",
                "location": "europe-west1",
                "project_id": "acme-data",
                "gcp_conn_id": "google_cloud_default",
            },
            marks=pytest.mark.skipif(
                importlib.util.find_spec("airflow.providers.google") is None,
                reason="the google provider is not installed (the Airflow 2.10 venv lacks it)",
            ),
        ),
    ],
)
def test_managed_cluster_runners_use_the_providers_operators_with_the_same_mapping(
    monkeypatch, runner, settings, provider_class, cluster
):
    dag = load_dag(monkeypatch, PIPELINE_RUNNER=runner, **settings)
    for task_id in PIPELINE_TASK_IDS:
        task = dag.get_task(task_id)
        assert provider_class in [base.__name__ for base in type(task).__mro__]
        assert isinstance(task, PipelinePodMixin)
        assert {name: getattr(task, name) for name in cluster} == cluster
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException):
        clean_up_finished_pod(monkeypatch, dag, INTERFACE.exit_code("data_rejected").code, {}, ti)


@pytest.mark.parametrize(
    "runner, missing", [("eks", "PIPELINE_EKS_CLUSTER"), ("gke", "PIPELINE_GKE_PROJECT")]
)
def test_a_managed_cluster_runner_without_its_cluster_is_an_import_error(
    monkeypatch, runner, missing
):
    from support import parse_dags

    dagbag = parse_dags(monkeypatch, PIPELINE_RUNNER=runner)
    [error] = dagbag.import_errors.values()
    assert f"PIPELINE_RUNNER={runner} needs" in error and missing in error


def finished_pod(exit_code):
    terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code)
    status = k8s.V1ContainerStatus(
        name="base",
        image="registry/mp:1.2.3",
        image_id="",
        ready=False,
        restart_count=0,
        state=k8s.V1ContainerState(terminated=terminated),
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="marketing-pipeline-validate-x", namespace="data"),
        status=k8s.V1PodStatus(
            phase="Succeeded" if exit_code == 0 else "Failed", container_statuses=[status]
        ),
    )


class RecordingPodManager:
    """Records the pods the operator deletes, with no cluster."""

    def __init__(self):
        self.deleted = []

    def delete_pod(self, pod):
        self.deleted.append(pod.metadata.name)


def clean_up_finished_pod(monkeypatch, dag, exit_code, metrics, ti):
    """Run KubernetesPodOperator's completion handling on a pod whose binary exited so."""
    task = dag.get_task(f"validate.{DATASETS[0]}")
    for cluster_call in ("is_istio_enabled", "patch_already_checked", "process_pod_deletion"):
        monkeypatch.setattr(task, cluster_call, lambda *args, **kwargs: False)
    # What log_events_on_failure reads from the cluster: nothing here.
    for cluster_read in ("_read_pod_container_states", "_read_pod_events"):
        monkeypatch.setattr(task, cluster_read, lambda *args, **kwargs: None)
    pod = finished_pod(exit_code)
    task.cleanup(pod=pod, remote_pod=pod, xcom_result=metrics, context={"ti": ti})


def test_pod_runner_succeeds_on_exit_code_zero(monkeypatch, kubernetes_dag):
    ti = FakeTaskInstance()
    clean_up_finished_pod(
        monkeypatch, kubernetes_dag, 0, {"status": INTERFACE.status("validate", "validated")}, ti
    )
    assert ti.pushed == {}  # KubernetesPodOperator returns the XCom; Airflow pushes it


@pytest.mark.parametrize(
    "exit_code, exception",
    [(code, e) for code, e in EXIT_CODE_OUTCOMES.items() if e is not AirflowSkipException],
)
def test_pod_runner_maps_the_container_exit_code(monkeypatch, kubernetes_dag, exit_code, exception):
    metrics = {"status": REJECTED, "error": "wrong columns"}
    ti = FakeTaskInstance()
    with pytest.raises(exception) as raised:
        clean_up_finished_pod(monkeypatch, kubernetes_dag, exit_code, metrics, ti)
    assert type(raised.value) is exception
    assert raised.value.exit_code == exit_code
    assert "wrong columns" in str(raised.value)
    assert ti.pushed == {"return_value": metrics}


def test_the_provider_skips_a_pod_that_exits_with_the_skip_code(monkeypatch, kubernetes_dag):
    [skip_code] = [code for code, e in EXIT_CODE_OUTCOMES.items() if e is AirflowSkipException]
    ti = FakeTaskInstance()
    with pytest.raises(AirflowSkipException, match=f"exit code {skip_code}"):
        clean_up_finished_pod(monkeypatch, kubernetes_dag, skip_code, {"status": "skipped"}, ti)


@pytest.mark.parametrize(
    "exit_code, deleted", [(0, True), (99, True), (65, False), (1, False), (137, False)]
)
def test_pods_that_succeeded_or_skipped_are_deleted_failed_ones_kept(
    kubernetes_dag, exit_code, deleted
):
    task = kubernetes_dag.get_task(f"validate.{DATASETS[0]}")
    manager = RecordingPodManager()
    task.__dict__["pod_manager"] = manager  # a cached_property, set before first use
    pod = finished_pod(exit_code)
    assert task.process_pod_deletion(pod) is deleted
    assert manager.deleted == ([pod.metadata.name] if deleted else [])
