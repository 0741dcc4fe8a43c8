"""The pod runner: one Kubernetes pod per task, from the pipeline's one small image (production)."""

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from marketing_pipeline_tasks.compat import AirflowException
from marketing_pipeline_tasks.exit_codes import raise_for_exit_code
from marketing_pipeline_tasks.interface import interface
from marketing_pipeline_tasks.settings import Settings

# Where KubernetesPodOperator's sidecar reads the XCom from; the binary writes its metrics there.
XCOM_FILE = "/airflow/xcom/return.json"


def container_exit_code(pod: k8s.V1Pod | None, container_name: str) -> int | None:
    """The exit code of the named container once it has terminated, else None."""
    statuses = (pod.status.container_statuses if pod and pod.status else None) or []
    for status in statuses:
        if status.name == container_name and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


class PipelinePodOperator(KubernetesPodOperator):
    """KubernetesPodOperator that maps the binary's exit code like the local runner does.

    KubernetesPodOperator turns every failed pod into a retried AirflowException; here
    the base container's exit code decides: skip, fail without retry, or retry.
    The metrics XCom is pushed by KubernetesPodOperator itself, on failure too.
    """

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None):
        try:
            super().cleanup(
                pod=pod, remote_pod=remote_pod, xcom_result=xcom_result, context=context
            )
        except AirflowException as failure:
            exit_code = container_exit_code(remote_pod, self.base_container_name)
            if exit_code is None:
                raise  # the pod never ran the binary (image pull, eviction, ...): retry
            error = xcom_result.get("error") if isinstance(xcom_result, dict) else None
            raise_for_exit_code(exit_code, error or str(failure).splitlines()[0])


def pod_operator(
    settings: Settings,
    task_id: str,
    pod_name: str,
    arguments: list[str],
    env: dict[str, str],
    **task_args,
) -> PipelinePodOperator:
    """A pod running `marketing-pipeline *arguments`; settings from the ConfigMap and Secret.

    `task_args` are BaseOperator arguments (trigger_rule, ...).
    """
    return PipelinePodOperator(
        task_id=task_id,
        name=pod_name,  # KubernetesPodOperator appends a random suffix
        image=settings.image,
        cmds=[interface().binary],  # the image's binary, on PATH
        arguments=arguments,
        env_vars={
            **env,
            "PIPELINE_XCOM_FILE": XCOM_FILE,
            # The local runner's process inherits these from the worker; a pod does not.
            "AIRFLOW_CTX_DAG_ID": "{{ dag.dag_id }}",
            "AIRFLOW_CTX_TASK_ID": "{{ task.task_id }}",
            "AIRFLOW_CTX_DAG_RUN_ID": "{{ run_id }}",
        },
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=settings.configmap)),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=settings.secret)),
        ],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": settings.cpu_request, "memory": settings.memory_request},
            limits={"memory": settings.memory_limit},
        ),
        namespace=settings.namespace,
        service_account_name=settings.service_account,
        labels={"app.kubernetes.io/name": "marketing-pipeline"},
        do_xcom_push=True,
        get_logs=True,
        # Failed pods stay for `kubectl logs` / `describe`; finished ones are removed.
        on_finish_action="delete_succeeded_pod",
        **task_args,
    )
