"""Test helpers: parse the DAG as Airflow does; stand-ins for what the DAG's code touches."""

from pathlib import Path

from marketing_pipeline_tasks.interface import interface
from marketing_pipeline_tasks.settings import DATASETS

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"

INTERFACE = interface()
# The binary's tasks that the DAG does not run, and why. Any other task of the binary's
# interface is a DAG task: one per dataset (in the command's TaskGroup) or one in all.
NOT_IN_DAG = {
    "setup": "creates the warehouse objects once, by hand (docs/deploy.md)",
    "sql": "ad hoc queries",
    "run": "every task in one process: the DAG's alternative",
}
PER_DATASET_COMMANDS = tuple(task.name for task in INTERFACE.tasks if task.per_dataset)
PIPELINE_TASK_IDS = [
    f"{command}.{dataset}" for command in PER_DATASET_COMMANDS for dataset in DATASETS
] + [task.name for task in INTERFACE.tasks if not task.per_dataset and task.name not in NOT_IN_DAG]


def parse_dags_folder():
    """A DagBag of the DAGs folder, parsed as Airflow does under the current environment."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.x
        from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def parse_dags(monkeypatch, **env):
    """A DagBag of the DAGs folder, parsed as Airflow does under the given environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return parse_dags_folder()


def load_dag(monkeypatch, **env):
    """The marketing_pipeline DAG, parsed under the given environment."""
    dagbag = parse_dags(monkeypatch, **env)
    assert dagbag.import_errors == {}
    return dagbag.dags["marketing_pipeline"]


class FakeTaskInstance:
    """The part of a TaskInstance the operators and callables use: XComs and identity."""

    def __init__(self, task_id=f"validate.{DATASETS[0]}", xcoms=None, try_number=1):
        self.dag_id = "marketing_pipeline"
        self.task_id = task_id
        self.run_id = "manual__2025-05-25"
        self.try_number = try_number
        self.map_index = -1
        self.log_url = f"http://airflow/dags/marketing_pipeline/runs/r/tasks/{task_id}"
        self.xcoms = dict(xcoms or {})
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids):
        return self.xcoms.get(task_ids)
