"""The DAG's settings, read from environment variables when the DAG file is parsed,
and the datasets, from the binary's interface (interface.json).

Pipeline settings for the binary itself (PIPELINE_LANDING_URL and the rest, see the
README) are not read here: the local runner passes the worker's environment on,
the pod runner takes them from a ConfigMap and Secrets.
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


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    runner: str
    """`local`: a subprocess on the worker; `kubernetes`: one pod per task."""
    binary: str
    """Local runner: path of the binary, or its name on PATH."""
    image: str
    namespace: str
    service_account: str
    configmap: str
    """Pod runner: ConfigMap with the non-secret settings (PIPELINE_*_URL, ...)."""
    secret: str
    """Pod runner: Secret with AWS_* and SNOWFLAKE_* credentials."""
    cpu_request: str
    memory_request: str
    memory_limit: str
    retries: int
    retry_delay: timedelta
    max_retry_delay: timedelta

    @classmethod
    def from_env(cls) -> "Settings":
        runner = _env("PIPELINE_RUNNER", LOCAL)
        if runner not in (LOCAL, KUBERNETES):
            raise ValueError(f"PIPELINE_RUNNER must be {LOCAL!r} or {KUBERNETES!r}, not {runner!r}")
        return cls(
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
            retries=int(_env("PIPELINE_DAG_RETRIES", "3")),
            retry_delay=timedelta(seconds=float(_env("PIPELINE_DAG_RETRY_DELAY_S", "300"))),
            max_retry_delay=timedelta(
                seconds=float(_env("PIPELINE_DAG_MAX_RETRY_DELAY_S", "3600"))
            ),
        )
