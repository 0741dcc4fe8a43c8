"""The DAG as Airflow parses it: import, shape, retries, callbacks, params, in both runner modes."""

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from marketing_pipeline_tasks.alerts import on_task_failure
from marketing_pipeline_tasks.compat import EXPONENTIAL_BACKOFF
from marketing_pipeline_tasks.interface import FACT, InterfaceError
from marketing_pipeline_tasks.local_runner import PipelineBinaryOperator
from marketing_pipeline_tasks.report import REPORT_TASK, ReportLink
from marketing_pipeline_tasks.schedule import DS_TEMPLATE
from marketing_pipeline_tasks.settings import DATASETS, DIMENSIONS, FACTS, Settings
from marketing_pipeline_tasks.tasks import pipeline_task
from support import DAGS_FOLDER, INTERFACE, NOT_IN_DAG, PIPELINE_TASK_IDS, load_dag, parse_dags

PIPELINE_TASK_IDS = set(PIPELINE_TASK_IDS)
CONTROL_TASK_IDS = {
    "check_validation",
    "validation_passed",
    "validation_rejected",
    "dq_alert",
    "end",
}


def downstream(dag, task_id):
    return dag.get_task(task_id).downstream_task_ids


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_dag_imports_without_errors_in_both_runner_modes(monkeypatch, runner):
    dag = load_dag(monkeypatch, PIPELINE_RUNNER=runner)
    assert set(dag.task_ids) == PIPELINE_TASK_IDS | CONTROL_TASK_IDS


def test_only_the_dag_file_is_parsed_not_its_helper_package(monkeypatch):
    # dags/.airflowignore keeps Airflow from importing marketing_pipeline_tasks/ as DAG files.
    dagbag = parse_dags(monkeypatch)
    assert [Path(stats.file).name for stats in dagbag.dagbag_stats] == ["marketing_pipeline.py"]


def test_an_unknown_runner_is_an_import_error_naming_the_setting(monkeypatch):
    dagbag = parse_dags(monkeypatch, PIPELINE_RUNNER="docker")
    assert "PIPELINE_RUNNER" in "".join(dagbag.import_errors.values())


def test_a_malformed_interface_is_an_import_error_naming_the_file(tmp_path):
    # In a fresh process: this one has read the committed interface already.
    dags = tmp_path / "dags"
    shutil.copytree(DAGS_FOLDER, dags, ignore=shutil.ignore_patterns("__pycache__"))
    interface_file = dags / "marketing_pipeline_tasks" / "interface.json"
    data = json.loads(interface_file.read_text())
    data["exit_codes"][-1]["airflow"] = "ignore"
    interface_file.write_text(json.dumps(data))
    script = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])  # as Airflow does with its DAGs folder\n"
        "try:\n"
        "    from airflow.dag_processing.dagbag import DagBag\n"
        "except ImportError:\n"
        "    from airflow.models.dagbag import DagBag\n"
        "print(json.dumps(DagBag(dag_folder=sys.argv[1]).import_errors))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(dags)], capture_output=True, text=True, check=True
    )
    errors = json.loads(result.stdout.splitlines()[-1])
    [error] = errors.values()
    where = f"exit_codes[{len(data['exit_codes']) - 1}].airflow"
    assert f"{interface_file}: {where}: must be one of" in error


def test_local_runner_tasks_run_the_binary_with_the_ds_and_params(local_dag):
    for task_id in PIPELINE_TASK_IDS:
        task = local_dag.get_task(task_id)
        assert isinstance(task, PipelineBinaryOperator)
        assert task.binary == INTERFACE.binary  # on PATH
        assert task.arguments == [*task_id.split("."), "--ds", DS_TEMPLATE]
        assert task.env == {
            "SCALE_FACTOR": "{{ params.scale_factor }}",
            "PIPELINE_DEFECT_RATE": "{{ params.defect_rate }}",
        }


def test_binary_path_comes_from_the_environment(monkeypatch):
    dag = load_dag(monkeypatch, PIPELINE_BINARY="/opt/bin/marketing-pipeline")
    assert dag.get_task("transform").binary == "/opt/bin/marketing-pipeline"


def test_the_tasks_left_out_of_the_dag_are_tasks_of_the_binary():
    # Every other task of the interface must be in the DAG (the test above): a task the
    # binary gains is either added to the DAG or left out here, on purpose.
    for name in NOT_IN_DAG:
        assert not INTERFACE.task(name).per_dataset, name


def test_datasets_are_the_interfaces_dimensions_then_facts():
    assert set(DATASETS) == {dataset.name for dataset in INTERFACE.datasets}
    assert DIMENSIONS and FACTS
    assert DATASETS == DIMENSIONS + FACTS


def test_generate_runs_dimensions_then_each_fact_after_the_facts_it_references(local_dag):
    for dimension in DIMENSIONS:
        assert local_dag.get_task(f"generate.{dimension}").upstream_task_ids == set()
    for fact in FACTS:
        referenced_facts = {
            f"generate.{name}"
            for name in INTERFACE.dataset(fact).references
            if INTERFACE.dataset(name).kind == FACT
        }
        # A fact that references no fact waits for every dimension.
        expected = referenced_facts or {f"generate.{dimension}" for dimension in DIMENSIONS}
        assert local_dag.get_task(f"generate.{fact}").upstream_task_ids == expected, fact


def test_every_dataset_is_generated_after_the_datasets_it_references(local_dag):
    for dataset in INTERFACE.datasets:
        before = local_dag.get_task(f"generate.{dataset.name}").get_flat_relative_ids(upstream=True)
        assert {f"generate.{name}" for name in dataset.references} <= before, dataset.name


def test_pipeline_tasks_are_checked_against_the_interface():
    settings = Settings.from_env()
    with pytest.raises(InterfaceError, match="no task 'deploy'"):
        pipeline_task(settings, "deploy")
    with pytest.raises(InterfaceError, match="no dataset 'orders'"):
        pipeline_task(settings, "validate", "orders")
    per_dataset = next(task.name for task in INTERFACE.tasks if task.per_dataset)
    with pytest.raises(InterfaceError, match=f"'{per_dataset}' takes one task per dataset"):
        pipeline_task(settings, per_dataset)
    with pytest.raises(InterfaceError, match="'transform' takes no dataset"):
        pipeline_task(settings, "transform", DATASETS[0])


def test_each_dataset_flows_generate_validate_then_upload_load(local_dag):
    for dataset in DATASETS:
        assert local_dag.get_task(f"validate.{dataset}").upstream_task_ids == {
            f"generate.{dataset}"
        }
        assert downstream(local_dag, f"validate.{dataset}") == {
            "check_validation",
            "dq_alert",
            "end",
        }
        assert local_dag.get_task(f"upload.{dataset}").upstream_task_ids == {"validation_passed"}
        assert downstream(local_dag, f"upload.{dataset}") == {f"load.{dataset}"}
        assert downstream(local_dag, f"load.{dataset}") == {"transform"}


def test_branch_goes_to_plain_gates_and_both_paths_reach_end(local_dag):
    branch = local_dag.get_task("check_validation")
    assert branch.trigger_rule == "all_done"
    assert branch.downstream_task_ids == {"validation_passed", "validation_rejected"}
    for gate in ("validation_passed", "validation_rejected"):
        assert type(local_dag.get_task(gate)).__name__ == "EmptyOperator"
    assert downstream(local_dag, "validation_passed") == {f"upload.{d}" for d in DATASETS}
    assert downstream(local_dag, "validation_rejected") == {"end"}
    assert downstream(local_dag, "transform") == {REPORT_TASK}


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_report_runs_after_transform_whatever_happened_and_links_the_page(monkeypatch, runner):
    dag = load_dag(monkeypatch, PIPELINE_RUNNER=runner)
    report = dag.get_task(REPORT_TASK)
    # all_done after transform: after the branch, so after every validate task, and also
    # when transform is skipped (a rejected file) or upstream_failed (a crash).
    assert report.trigger_rule == "all_done"
    assert report.upstream_task_ids == {"transform"}
    assert report.downstream_task_ids == {"dq_alert", "end"}
    assert report.get_flat_relative_ids(upstream=True) >= {f"validate.{d}" for d in DATASETS}
    assert [type(link) for link in report.operator_extra_links] == [ReportLink]
    # Only the report task has the link; the runners' classes are unchanged.
    for task in dag.tasks:
        if task.task_id != REPORT_TASK:
            assert not any(isinstance(link, ReportLink) for link in task.operator_extra_links)
    assert not any(isinstance(link, ReportLink) for link in type(report).operator_extra_links)


def test_the_report_link_is_serialized_with_the_dag(local_dag):
    # What the UI reads in Airflow 3: the link's name and the XCom key its URL is kept under.
    serialized_objects = pytest.importorskip("airflow.serialization.serialized_objects")
    if not hasattr(serialized_objects, "DagSerialization"):
        pytest.skip("Airflow before 3.1 serializes links differently")
    serialized = serialized_objects.DagSerialization.to_dict(local_dag)
    [report] = [
        task["__var"]
        for task in serialized["dag"]["tasks"]
        if task["__var"]["task_id"] == REPORT_TASK
    ]
    assert report["_operator_extra_links"] == {"Data-quality report": "_link_ReportLink"}


def test_dq_alert_and_end_run_whatever_validation_and_transform_did(local_dag):
    alert = local_dag.get_task("dq_alert")
    assert alert.trigger_rule == "all_done"
    assert alert.upstream_task_ids == {f"validate.{d}" for d in DATASETS} | {REPORT_TASK}
    end = local_dag.get_task("end")
    assert end.trigger_rule == "none_failed_min_one_success"
    assert end.downstream_task_ids == set()


def test_retries_backoff_timeout_and_failure_callback_on_every_task(local_dag):
    for task in local_dag.tasks:
        assert task.retries == 3
        assert task.retry_delay == timedelta(minutes=5)
        assert task.retry_exponential_backoff == EXPONENTIAL_BACKOFF
        assert task.max_retry_delay == timedelta(hours=1)
        assert task.execution_timeout == timedelta(hours=2)
        callbacks = task.on_failure_callback
        assert on_task_failure in (callbacks if isinstance(callbacks, list) else [callbacks])


def test_retry_and_timeout_settings_are_overridable_by_environment(monkeypatch):
    dag = load_dag(
        monkeypatch,
        PIPELINE_DAG_RETRIES="1",
        PIPELINE_DAG_RETRY_DELAY_S="0.5",
        PIPELINE_DAG_MAX_RETRY_DELAY_S="2",
        PIPELINE_TASK_TIMEOUT_S="60",
        PIPELINE_DAGRUN_TIMEOUT_S="600",
    )
    task = dag.get_task("validate.contacts")
    assert task.retries == 1
    assert task.retry_delay == timedelta(seconds=0.5)
    assert task.max_retry_delay == timedelta(seconds=2)
    assert task.execution_timeout == timedelta(seconds=60)
    assert dag.dagrun_timeout == timedelta(seconds=600)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("PIPELINE_TASK_TIMEOUT_S", "soon", "PIPELINE_TASK_TIMEOUT_S must be a number of seconds"),
        ("PIPELINE_DAGRUN_TIMEOUT_S", "-1", "PIPELINE_DAGRUN_TIMEOUT_S must not be negative"),
        ("PIPELINE_TASK_TIMEOUT_S", "0", "PIPELINE_TASK_TIMEOUT_S must be at least 1 second"),
        ("PIPELINE_K8S_IN_CLUSTER", "yes", "PIPELINE_K8S_IN_CLUSTER must be true or false"),
    ],
)
def test_a_bad_setting_is_an_import_error_naming_it(monkeypatch, name, value, error):
    dagbag = parse_dags(monkeypatch, **{name: value})
    [message] = dagbag.import_errors.values()
    assert error in message


def test_schedule_params_and_docs(local_dag):
    assert local_dag.catchup is False
    assert local_dag.max_active_runs == 1
    assert local_dag.dagrun_timeout == timedelta(hours=12)
    assert type(local_dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert local_dag.params["scale_factor"] == 1
    assert local_dag.params["defect_rate"] == 0.01
    for name in ("scale_factor", "defect_rate"):
        param = local_dag.params.get_param(name)
        assert param.schema["title"] and len(param.description) > 60, name
    assert "validation_rejected" in local_dag.doc_md
    assert "Data-quality report" in local_dag.doc_md


def test_docs_list_the_interfaces_exit_codes_and_datasets(local_dag):
    for exit_code in INTERFACE.exit_codes:
        assert f"| {exit_code.code} | " in local_dag.doc_md
        assert exit_code.meaning in local_dag.doc_md
    for dataset in INTERFACE.datasets:
        assert f"| {dataset.name} | {dataset.kind} | {dataset.format} |" in local_dag.doc_md
