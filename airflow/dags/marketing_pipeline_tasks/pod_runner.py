"""The pod runners: one Kubernetes pod per task, from the pipeline's one small image.

`kubernetes` is the cncf-kubernetes provider's KubernetesPodOperator, on the cluster its
Connection, kubeconfig or in-cluster config names (Composer, self-managed); `eks` is the
amazon provider's EksPodOperator (MWAA: credentials for the cluster from the AWS Connection);
`gke` is the google provider's GKEStartPodOperator (a GKE cluster other than Composer's own).
All three are KubernetesPodOperators underneath, so they build the same hardened pod and map
the binary's exit code the same way.
"""

from functools import cache

from kubernetes.client import models as k8s

from marketing_pipeline_tasks.compat import AirflowException
from marketing_pipeline_tasks.exit_codes import NOTHING_TO_DO, raise_for_exit_code
from marketing_pipeline_tasks.interface import interface
from marketing_pipeline_tasks.lineage import PipelineTaskOutcome
from marketing_pipeline_tasks.settings import EKS, GKE, Settings

# Where KubernetesPodOperator's sidecar reads the XCom from; the binary writes its metrics there.
XCOM_FILE = "/airflow/xcom/return.json"
# The image's user (distroless `nonroot`), numeric so that runAsNonRoot can be verified.
NONROOT_UID = 65532
# The only writable places: the binary's temp files and its working directory.
SCRATCH_MOUNTS = {"tmp": "/tmp", "work": "/work"}

# The "restricted" Pod Security Standard, for the pod and every container (the XCom sidecar too).
RESTRICTED_CONTAINER = k8s.V1SecurityContext(
    run_as_non_root=True,
    run_as_user=NONROOT_UID,
    run_as_group=NONROOT_UID,
    read_only_root_filesystem=True,
    allow_privilege_escalation=False,
    capabilities=k8s.V1Capabilities(drop=["ALL"]),
    seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
)
RESTRICTED_POD = k8s.V1PodSecurityContext(
    run_as_non_root=True,
    run_as_user=NONROOT_UID,
    run_as_group=NONROOT_UID,
    fs_group=NONROOT_UID,
    seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
)


def container_exit_code(pod: k8s.V1Pod | None, container_name: str) -> int | None:
    """The exit code of the named container once it has terminated, else None."""
    statuses = (pod.status.container_statuses if pod and pod.status else None) or []
    for status in statuses:
        if status.name == container_name and status.state and status.state.terminated:
            return status.state.terminated.exit_code
    return None


class PipelinePodMixin(PipelineTaskOutcome):
    """The binary's exit code decides the outcome, as in the local runner.

    The provider itself skips on exit code 99 (`skip_on_exit_code`) and logs the pod's events
    on failure (`log_events_on_failure`). It has no "fail without retry on exit code N":
    every failed pod is a retried AirflowException, so `cleanup` maps the base container's
    code onto the interface's outcome. The metrics XCom is pushed by the provider, on failure
    too.
    """

    def execute(self, context):
        metrics = super().execute(context)
        self.record_outcome(context, metrics or {})
        return metrics

    def cleanup(self, pod, remote_pod, xcom_result=None, context=None):
        try:
            super().cleanup(
                pod=pod, remote_pod=remote_pod, xcom_result=xcom_result, context=context
            )
        except AirflowException as failure:
            exit_code = container_exit_code(remote_pod, self.base_container_name)
            if exit_code is None or exit_code in self.skip_on_exit_code:
                raise  # the provider's skip, or a pod that never ran the binary: retry
            error = xcom_result.get("error") if isinstance(xcom_result, dict) else None
            raise_for_exit_code(exit_code, error or str(failure).splitlines()[0])

    def build_pod_request_obj(self, context=None):
        """The provider's pod, with the XCom sidecar as locked down as the binary's container
        (cncf-kubernetes before 10.11, which Airflow 2.10 runs, has no argument for it)."""
        pod = super().build_pod_request_obj(context)
        for container in pod.spec.containers:
            container.security_context = container.security_context or RESTRICTED_CONTAINER
        return pod

    def process_pod_deletion(self, pod, *, reraise=True):
        """A pod that ended in a skip code is done, not broken: delete it like a success."""
        skipped = container_exit_code(pod, self.base_container_name) in self.skip_on_exit_code
        if skipped and self.on_finish_action.value == "delete_succeeded_pod":
            self.log.info("Deleting pod %s: it ended in a skip code", pod.metadata.name)
            self.pod_manager.delete_pod(pod)
            return True
        return super().process_pod_deletion(pod, reraise=reraise)


@cache
def operator_class(runner: str) -> type:
    """The pod operator class of a runner; the provider is imported only when it is used."""
    if runner == EKS:
        from airflow.providers.amazon.aws.operators.eks import EksPodOperator as base
    elif runner == GKE:
        from airflow.providers.google.cloud.operators.kubernetes_engine import (
            GKEStartPodOperator as base,
        )
    else:
        from airflow.providers.cncf.kubernetes.operators.pod import (
            KubernetesPodOperator as base,
        )
    return type(f"Pipeline{base.__name__}", (PipelinePodMixin, base), {"__module__": __name__})


def cluster_args(settings: Settings) -> dict:
    """Which cluster the pods run on, as the runner's operator takes it."""
    if settings.runner == EKS:
        return {
            "cluster_name": settings.eks_cluster,
            "region": settings.eks_region,
            "aws_conn_id": settings.aws_conn_id,
        }
    if settings.runner == GKE:
        return {
            "cluster_name": settings.gke_cluster,
            "location": settings.gke_location,
            "project_id": settings.gke_project,
            "gcp_conn_id": settings.gcp_conn_id,
        }
    given = {
        "kubernetes_conn_id": settings.kubernetes_conn_id,
        "config_file": settings.config_file,
        "cluster_context": settings.cluster_context,
        "in_cluster": settings.in_cluster,
    }
    return {name: value for name, value in given.items() if value is not None}


def pod_operator(
    settings: Settings,
    task_id: str,
    pod_name: str,
    arguments: list[str],
    env: dict[str, str],
    **task_args,
):
    """A hardened pod running `marketing-pipeline *arguments`; settings from the ConfigMap and
    Secret. `task_args` are BaseOperator arguments (trigger_rule, outlets, ...)."""
    volumes = [
        k8s.V1Volume(name=name, empty_dir=k8s.V1EmptyDirVolumeSource()) for name in SCRATCH_MOUNTS
    ]
    mounts = [
        k8s.V1VolumeMount(name=name, mount_path=path) for name, path in SCRATCH_MOUNTS.items()
    ]
    # KubernetesPodOperator appends a random suffix; EksPodOperator calls the name pod_name.
    name = {"pod_name" if settings.runner == EKS else "name": pod_name}
    return operator_class(settings.runner)(
        task_id=task_id,
        **name,
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
        security_context=RESTRICTED_POD,
        container_security_context=RESTRICTED_CONTAINER,
        volumes=volumes,
        volume_mounts=mounts,
        startup_timeout_seconds=int(settings.startup_timeout.total_seconds()),
        # Kubernetes stops a pod that outlives the task's timeout, also when the worker is gone.
        active_deadline_seconds=int(settings.task_timeout.total_seconds()),
        skip_on_exit_code=NOTHING_TO_DO,
        log_events_on_failure=True,
        do_xcom_push=True,
        get_logs=True,
        # Failed pods stay for `kubectl logs` / `describe`; finished and skipped ones go.
        on_finish_action="delete_succeeded_pod",
        **cluster_args(settings),
        **task_args,
    )
