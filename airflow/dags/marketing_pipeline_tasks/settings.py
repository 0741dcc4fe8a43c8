"""The DAG's settings, read from environment variables when the DAG file is parsed,
and the datasets, from the binary's interface (interface.json).

Pipeline settings for the binary itself (PIPELINE_LANDING_URL and the rest, see the
README) are not read here: the local runner passes the worker's environment on,
the pod runners take them from a ConfigMap and Secrets.
"""

import os
from dataclasses import dataclass
from datetime import timedelta

from marketing_pipeline_tasks.interface import interface

DIMENSIONS = tuple(dataset.name for dataset in interface().dimensions)
FACTS = tuple(dataset.name for dataset in interface().facts)
DATASETS = DIMENSIONS + FACTS
# Dataset -> the datasets generated before it: dimensions first, in parallel; then each
# fact after the facts it references (after every dimension when it references none).
GENERATE_UPSTREAM = interface().generate_upstream()

LOCAL = "local"
KUBERNETES = "kubernetes"
EKS = "eks"
GKE = "gke"
RUNNERS = (LOCAL, KUBERNETES, EKS, GKE)
# The runners that start one pod per task.
POD_RUNNERS = (KUBERNETES, EKS, GKE)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _seconds(name: str, default: float) -> timedelta:
    value = _env(name, str(default))
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, not {value!r}")
    return timedelta(seconds=seconds)


def _flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value == "true"


@dataclass(frozen=True)
class Settings:
    runner: str
    """`local`: a subprocess on the worker; `kubernetes`, `eks`, `gke`: one pod per task."""
    binary: str
    """Local runner: path of the binary, or its name on PATH."""
    image: str
    namespace: str
    service_account: str
    configmap: str
    """Pod runners: ConfigMap with the non-secret settings (PIPELINE_*_URL, ...)."""
    secret: str
    """Pod runners: Secret with AWS_* and SNOWFLAKE_* credentials."""
    cpu_request: str
    memory_request: str
    memory_limit: str
    startup_timeout: timedelta
    """How long a pod may take to be scheduled and start (autoscaled nodes are slow)."""
    kubernetes_conn_id: str | None
    """`kubernetes` runner: the Kubernetes Connection; none means the provider's default."""
    config_file: str | None
    cluster_context: str | None
    in_cluster: bool | None
    eks_cluster: str | None
    eks_region: str | None
    aws_conn_id: str
    gke_cluster: str | None
    gke_location: str | None
    gke_project: str | None
    gcp_conn_id: str
    retries: int
    retry_delay: timedelta
    max_retry_delay: timedelta
    task_timeout: timedelta
    """Each task's execution_timeout, and a pod's active_deadline_seconds."""
    dagrun_timeout: timedelta
    """A run still going after this fails, so the next day's run can start."""
    deadline: timedelta
    """Airflow 3.1+: alert when a run is not done this long after it was queued; 0: none."""

    @classmethod
    def from_env(cls) -> "Settings":
        runner = _env("PIPELINE_RUNNER", LOCAL)
        if runner not in RUNNERS:
            raise ValueError(f"PIPELINE_RUNNER must be one of {', '.join(RUNNERS)}, not {runner!r}")
        settings = cls(
            runner=runner,
            binary=_env("PIPELINE_BINARY", interface().binary),
            image=_env("PIPELINE_IMAGE", "marketing-pipeline:latest"),
            namespace=_env("PIPELINE_NAMESPACE", "marketing-pipeline"),
            service_account=_env("PIPELINE_SERVICE_ACCOUNT", "marketing-pipeline"),
            configmap=_env("PIPELINE_CONFIGMAP", "marketing-pipeline-config"),
            secret=_env("PIPELINE_SECRET", "marketing-pipeline-secrets"),
            cpu_request=_env("PIPELINE_POD_CPU", "1"),
            memory_request=_env("PIPELINE_POD_MEMORY", "2Gi"),
            memory_limit=_env("PIPELINE_POD_MEMORY_LIMIT", "8Gi"),
            startup_timeout=_seconds("PIPELINE_POD_STARTUP_TIMEOUT_S", 600),
            kubernetes_conn_id=os.environ.get("PIPELINE_K8S_CONN_ID") or None,
            config_file=os.environ.get("PIPELINE_K8S_CONFIG_FILE") or None,
            cluster_context=os.environ.get("PIPELINE_K8S_CLUSTER_CONTEXT") or None,
            in_cluster=_flag("PIPELINE_K8S_IN_CLUSTER"),
            eks_cluster=os.environ.get("PIPELINE_EKS_CLUSTER") or None,
            eks_region=os.environ.get("PIPELINE_EKS_REGION") or None,
            aws_conn_id=_env("PIPELINE_AWS_CONN_ID", "aws_default"),
            gke_cluster=os.environ.get("PIPELINE_GKE_CLUSTER") or None,
            gke_location=os.environ.get("PIPELINE_GKE_LOCATION") or None,
            gke_project=os.environ.get("PIPELINE_GKE_PROJECT") or None,
            gcp_conn_id=_env("PIPELINE_GCP_CONN_ID", "google_cloud_default"),
            retries=int(_env("PIPELINE_DAG_RETRIES", "3")),
            retry_delay=_seconds("PIPELINE_DAG_RETRY_DELAY_S", 300),
            max_retry_delay=_seconds("PIPELINE_DAG_MAX_RETRY_DELAY_S", 3600),
            task_timeout=_seconds("PIPELINE_TASK_TIMEOUT_S", 7200),
            dagrun_timeout=_seconds("PIPELINE_DAGRUN_TIMEOUT_S", 43200),
            deadline=_seconds("PIPELINE_DEADLINE_S", 21600),
        )
        settings._check()
        return settings

    def _check(self) -> None:
        """Settings that cannot work: the eks and gke runners cannot guess the cluster."""
        required = {
            EKS: {"PIPELINE_EKS_CLUSTER": self.eks_cluster},
            GKE: {
                "PIPELINE_GKE_CLUSTER": self.gke_cluster,
                "PIPELINE_GKE_LOCATION": self.gke_location,
                "PIPELINE_GKE_PROJECT": self.gke_project,
            },
        }.get(self.runner, {})
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ValueError(f"PIPELINE_RUNNER={self.runner} needs {', '.join(missing)}")
        if self.task_timeout.total_seconds() < 1:
            raise ValueError("PIPELINE_TASK_TIMEOUT_S must be at least 1 second")
