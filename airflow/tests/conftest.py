"""Test setup: a throwaway AIRFLOW_HOME, set before Airflow is first imported."""

import atexit
import os
import shutil
import tempfile

import pytest

from support import DAGS_FOLDER, load_dag

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="marketing-pipeline-airflow-home-")
atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)


@pytest.fixture(autouse=True)
def default_settings(monkeypatch):
    """The DAG's settings come from the environment: every test starts from the defaults.

    (test_end_to_end reads PIPELINE_BINARY when it is collected, before this runs.)
    """
    for name in list(os.environ):
        if name.startswith(("PIPELINE_", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)


@pytest.fixture
def local_dag(monkeypatch):
    return load_dag(monkeypatch, PIPELINE_RUNNER="local")


@pytest.fixture
def kubernetes_dag(monkeypatch):
    return load_dag(monkeypatch, PIPELINE_RUNNER="kubernetes", PIPELINE_IMAGE="registry/mp:1.2.3")
