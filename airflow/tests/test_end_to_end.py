"""End to end: a real Airflow runs the DAG (`airflow dags test`) with the local runner and the real
binary, a SQLite metadata DB and a DuckDB warehouse in a temp dir. The clean run keeps its landing
area and lake on a real S3 server (s3s-fs, from S3S_FS_BIN, on 127.0.0.1); the others on file://.

Needs PIPELINE_BINARY pointing at a built marketing-pipeline (and S3S_FS_BIN for the S3 run);
`bash .ci/run` sets both. Skipped otherwise. Each DAG run takes about 30 s (`airflow db migrate`
once, about 8 s, before them).
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from airflow import __version__ as AIRFLOW_VERSION

from marketing_pipeline_tasks.exit_codes import BUG, DATA_REJECTED
from marketing_pipeline_tasks.lineage import MARTS, lake_asset, raw_asset
from marketing_pipeline_tasks.report import REPORT_TASK, ReportLink
from marketing_pipeline_tasks.settings import DIMENSIONS, FACTS
from support import DAGS_FOLDER, INTERFACE, PIPELINE_TASK_IDS

BINARY = os.environ.get("PIPELINE_BINARY", "")
pytestmark = pytest.mark.skipif(
    not Path(BINARY).is_file(),
    reason="set PIPELINE_BINARY to a built marketing-pipeline binary to run the end-to-end tests",
)

DS = "2025-05-25"
SCALE_FACTOR = 0.01  # 100 contacts, 200 form fills, 500 website sessions
PIPELINE_TASKS = PIPELINE_TASK_IDS
# Everything after the branch on the validate metrics, but the report, which runs regardless.
PUBLISH_TASKS = [
    t for t in PIPELINE_TASKS if t.split(".")[0] not in ("generate", "validate", REPORT_TASK)
]
AIRFLOW_2 = AIRFLOW_VERSION.startswith("2.")


def names_task(url: str, task_id: str) -> bool:
    """A task's page or log URL: Airflow 3's .../runs/RUN/tasks/TASK[?try_number=N], or 2.x's
    .../grid?dag_run_id=RUN&task_id=TASK&base_date=...&tab=logs."""
    return f"/tasks/{task_id}" in url or f"&task_id={task_id}&" in url


# The `airflow` command of the Python running the tests.
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


# A DAG a downstream team would write, scheduled on the marts Asset, in a DAG bundle of its own.
DOWNSTREAM_DAGS = Path(__file__).parent / "downstream_dags"
DAG_BUNDLES = [
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    | {"kwargs": {}},
    {"name": "downstream", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle"}
    | {"kwargs": {"path": str(DOWNSTREAM_DAGS)}},
]


def base_env(airflow_home: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIPELINE_", "AIRFLOW_", "AIRFLOW__", "SCALE_FACTOR"))
    }
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(DAG_BUNDLES),
    )
    return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    # reserialize: the DAGs and their Assets in the database, as the DAG processor would put
    # them (`dags test` does not register Assets on Airflow 2).
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([AIRFLOW, *command], env=base_env(home), check=True, capture_output=True)
    return home


class Pipeline:
    """One pipeline's storage in a temp dir, and the Airflow that runs the DAG on it."""

    def __init__(self, airflow_home: Path, data: Path, binary: str = BINARY):
        self.airflow_home = airflow_home
        self.data = data
        self.alert_log = data / "alerts.jsonl"
        self.lineage_log = data / "openlineage.jsonl"
        self.env = base_env(airflow_home) | {
            # The OpenLineage provider's file transport: one event per line.
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(self.lineage_log), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "marketing-pipeline-tests",
            "PIPELINE_RUNNER": "local",
            "PIPELINE_BINARY": binary,
            "PIPELINE_LANDING_URL": f"file://{data}/landing",
            "PIPELINE_LAKE_URL": f"file://{data}/lake",
            "PIPELINE_METADATA_URL": f"sqlite://{data}/metadata.db",
            "PIPELINE_WAREHOUSE_URL": f"duckdb://{data}/wh.duckdb",
            "PIPELINE_ALERT_LOG": str(self.alert_log),
            # `airflow dags test` on Airflow 3.3.2 crashes when a run with a DeadlineAlert
            # succeeds (DagRun.update_state looks the alerts up by id, and the DAG that
            # DAG.test builds carries them serialized). The scheduler path is unaffected;
            # test_validation_and_alerts covers the alert and its callback.
            "PIPELINE_DEADLINE_S": "0",
            "PIPELINE_DAG_RETRIES": "1",
            "PIPELINE_DAG_RETRY_DELAY_S": "1",
            "PIPELINE_DAG_MAX_RETRY_DELAY_S": "1",
        }
        self.runs = 0

    def run_dag(self, logical_date: str = DS, **params) -> subprocess.CompletedProcess:
        """`airflow dags test` for a logical date on DS; its output goes to a log file beside
        the data."""
        self.runs += 1
        conf = {"scale_factor": SCALE_FACTOR, **params}
        log = self.data / f"dags-test-{self.runs}.log"
        with log.open("w") as out:
            return subprocess.run(
                [AIRFLOW, "dags", "test", "marketing_pipeline", logical_date]
                + ["--conf", json.dumps(conf)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
            )

    def run_dag_without_logical_date(self, **params) -> subprocess.CompletedProcess:
        """A run triggered with no logical date (Airflow 3): DAG.test(logical_date=None)."""
        self.runs += 1
        conf = {"scale_factor": SCALE_FACTOR, **params}
        script = (
            "import json, sys\n"
            "from support import parse_dags_folder\n"
            "dag = parse_dags_folder().dags['marketing_pipeline']\n"
            "run = dag.test(logical_date=None, run_conf=json.loads(sys.argv[1]))\n"
            "sys.exit(0 if run.state == 'success' else 1)\n"
        )
        log = self.data / f"dags-test-{self.runs}.log"
        with log.open("w") as out:
            return subprocess.run(
                [sys.executable, "-c", script, json.dumps(conf)],
                env=self.env | {"PYTHONPATH": f"{Path(__file__).parent}:{DAGS_FOLDER}"},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
            )

    def binary(self, *args, **env) -> dict:
        """Run the binary on this pipeline's storage; its metrics JSON."""
        result = subprocess.run(
            [BINARY, *args],
            env=self.env | env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout.splitlines()[-1])

    def _airflow_db(self, query: str, *args) -> list[tuple]:
        """The rows of one query on the Airflow home's metadata database."""
        db = sqlite3.connect(self.airflow_home / "airflow.db")
        try:
            return db.execute(query, args).fetchall()
        finally:
            db.close()

    def _latest_run(self, query: str, *args):
        [(run_id,)] = self._airflow_db(
            "SELECT run_id FROM dag_run WHERE dag_id = 'marketing_pipeline'"
            " ORDER BY id DESC LIMIT 1"
        )
        return self._airflow_db(query, run_id, *args)

    def run_state(self) -> str:
        [(state,)] = self._latest_run("SELECT state FROM dag_run WHERE run_id = ?")
        return state

    def task_states(self) -> dict[str, str]:
        """Task id -> state in the latest run."""
        rows = self._latest_run("SELECT task_id, state FROM task_instance WHERE run_id = ?")
        return dict(rows)

    def try_number(self, task_id: str) -> int:
        [(try_number,)] = self._latest_run(
            "SELECT try_number FROM task_instance WHERE run_id = ? AND task_id = ?", task_id
        )
        return try_number

    def xcom(self, task_id: str, key: str = "return_value"):
        [(value,)] = self._latest_run(
            "SELECT value FROM xcom WHERE run_id = ? AND task_id = ? AND key = ?", task_id, key
        )
        return json.loads(value)

    def report_url(self) -> str:
        """The report task's outputs.report, once checked to be its extra link too."""
        metrics = self.xcom(REPORT_TASK)
        assert metrics["status"] == INTERFACE.status(REPORT_TASK, "reported")
        url = metrics["outputs"]["report"]
        # Airflow 3 keeps the link the UI shows as an XCom of the task; 2.x's webserver
        # computes it when asked.
        if not AIRFLOW_2:
            assert self.xcom(REPORT_TASK, ReportLink().xcom_key) == url
        return url

    def processed_days(self) -> set[str]:
        """The `ds` every pipeline task of the latest run reported in its metrics."""
        return {self.xcom(task_id)["ds"] for task_id in PIPELINE_TASKS}

    def asset_events(self, asset) -> list[dict]:
        """The `extra` of each event of an Asset (a Dataset on Airflow 2), oldest first (all
        runs of the module's Airflow home)."""
        kind = "dataset" if AIRFLOW_2 else "asset"
        rows = self._airflow_db(
            f"SELECT e.extra FROM {kind}_event e JOIN {kind} a ON a.id = e.{kind}_id"
            " WHERE a.uri = ? ORDER BY e.id",
            asset.uri,
        )
        return [json.loads(extra) for (extra,) in rows]

    def downstream_runs(self) -> list[str]:
        """The run types of marts_consumer's runs."""
        rows = self._airflow_db("SELECT run_type FROM dag_run WHERE dag_id = 'marts_consumer'")
        return [run_type for (run_type,) in rows]

    def lineage_events(self) -> list[dict]:
        """The OpenLineage events the provider wrote (file transport)."""
        return [json.loads(line) for line in self.lineage_log.read_text().splitlines()]

    def alerts(self, kind: str) -> list[dict]:
        if not self.alert_log.exists():
            return []
        alerts = [json.loads(line) for line in self.alert_log.read_text().splitlines()]
        return [alert for alert in alerts if alert["kind"] == kind]

    def count(self, table: str) -> int:
        [[count]] = self.binary("sql", f"SELECT COUNT(*) FROM {table}")["rows"]
        return int(count)


@pytest.fixture
def pipeline(airflow_home, tmp_path):
    return Pipeline(airflow_home, tmp_path)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def s3_settings(tmp_path):
    """An s3s-fs server on 127.0.0.1 with buckets `landing` and `lake`; the binary's S3 settings."""
    server = os.environ.get("S3S_FS_BIN", "")
    if not Path(server).is_file():
        pytest.skip("set S3S_FS_BIN to an s3s-fs binary (bash .ci/run installs it)")
    root = tmp_path / "s3"
    for bucket in ("landing", "lake"):
        (root / bucket).mkdir(parents=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keys = ("test-access-key", "test-secret-key")
    process = subprocess.Popen(
        [server, "--host", "127.0.0.1", "--port", str(port)]
        + ["--access-key", keys[0], "--secret-key", keys[1], str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not listening(port):
        assert time.monotonic() < deadline, "s3s-fs did not start"
        time.sleep(0.05)
    yield {
        "PIPELINE_LANDING_URL": "s3://landing/marketing",
        "PIPELINE_LAKE_URL": "s3://lake",
        "AWS_ACCESS_KEY_ID": keys[0],
        "AWS_SECRET_ACCESS_KEY": keys[1],
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    process.kill()
    process.wait()


def stop_process_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM a process started in its own session, then SIGKILL whatever of it is left.

    A scheduler shutting down waits for the task runs it started; the test only needs
    the run to exist, so it does not wait for them past the grace period.
    """
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def assert_run(pipeline, result, expected_states: dict[str, str], run_state: str):
    log = pipeline.data / f"dags-test-{pipeline.runs}.log"
    states = pipeline.task_states()
    assert states == expected_states, f"see {log}"
    assert pipeline.run_state() == run_state, f"see {log}"
    assert (result.returncode == 0) == (run_state == "success"), f"see {log}"


def expected_states(changes: dict[str, str] | None = None) -> dict[str, str]:
    """Every task's state in a clean run, with the given changes."""
    clean = dict.fromkeys(PIPELINE_TASKS, "success") | {
        "check_validation": "success",
        "validation_passed": "success",
        "validation_rejected": "skipped",
        "dq_alert": "skipped",
        "end": "success",
    }
    return clean | (changes or {})


# A dataset not validated: the branch takes the rejected path and the run fails (the report
# task still runs: it is not among PUBLISH_TASKS).
NOT_PUBLISHED = dict.fromkeys(PUBLISH_TASKS, "skipped") | {
    "validation_passed": "skipped",
    "validation_rejected": "success",
    "end": "upstream_failed",
}


def assert_report_page(path: Path, datasets) -> None:
    """The report is a self-contained HTML page that names the given datasets."""
    assert path.is_file(), path
    page = path.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert DS in page
    for dataset in datasets:
        assert dataset in page, dataset


def test_clean_run_on_s3_publishes_loads_and_transforms(pipeline, s3_settings, tmp_path):
    pipeline.env |= s3_settings
    result = pipeline.run_dag(defect_rate=0)
    assert_run(pipeline, result, expected_states(), "success")
    assert pipeline.count("MART.MART_CONTACTS") == 100
    assert pipeline.count("MART.MART_FORM_FILLS") == 200
    assert pipeline.count("MART.MART_CAMPAIGNS") == 20
    assert pipeline.alerts("dq_alert") == []
    assert pipeline.alerts("task_failure") == []
    assert pipeline.processed_days() == {DS}
    # Both areas really live on the S3 server.
    lake = tmp_path / "s3" / "lake" / "valid-data" / "contacts" / f"ds={DS}"
    assert (lake / f"contacts_{DS}.parquet").is_file()
    assert not (pipeline.data / "landing").exists()
    # The data-quality report, on the lake bucket, where the report task's XCom says.
    key = f"reports/ds={DS}/index.html"
    assert pipeline.report_url() == f"s3://lake/{key}"
    assert_report_page(tmp_path / "s3" / "lake" / key, DIMENSIONS + FACTS)

    # Asset events, with the task's metrics as their extra, for downstream DAGs.
    marts = pipeline.asset_events(MARTS)[-1]
    assert (marts["task"], marts["ds"], marts["status"]) == ("transform", DS, "transformed")
    lake = pipeline.asset_events(lake_asset("contacts"))[-1]
    assert (
        lake["outputs"]["valid-data"]
        == f"s3://lake/valid-data/contacts/ds={DS}/contacts_{DS}.parquet"
    )
    raw = pipeline.asset_events(raw_asset("contacts"))[-1]
    assert raw["rows_out"] == 100

    # OpenLineage: each task's COMPLETE event names what it read and wrote.
    complete = {
        event["job"]["name"].removeprefix("marketing_pipeline."): event
        for event in pipeline.lineage_events()
        if event["eventType"] == "COMPLETE" and "." in event["job"]["name"]
    }
    upload = complete["upload.contacts"]
    assert {(d["namespace"], d["name"]) for d in upload["outputs"]} == {
        ("s3://lake", f"valid-data/contacts/ds={DS}/contacts_{DS}.parquet")
    }
    assert {d["namespace"] for d in upload["inputs"]} == {"s3://landing"}
    warehouse = f"duckdb://{pipeline.data}/wh.duckdb"
    load = complete["load.contacts"]
    assert [(d["namespace"], d["name"]) for d in load["outputs"]] == [
        (warehouse, "wh.raw.contacts")
    ]
    transform = complete["transform"]
    assert {d["name"] for d in transform["inputs"]} == {f"wh.raw.{d}" for d in DIMENSIONS + FACTS}
    assert "wh.mart.mart_contacts" in {d["name"] for d in transform["outputs"]}


def test_new_defects_alert_once_and_a_rerun_alerts_none(pipeline):
    result = pipeline.run_dag(defect_rate=0.01)
    assert_run(pipeline, result, expected_states({"dq_alert": "success"}), "success")
    [alert] = pipeline.alerts("dq_alert")
    alerted = {finding.get("dataset") for finding in alert["datasets"]}
    assert alerted == set(FACTS)  # the binary injects defects into facts only
    for finding in alert["datasets"]:
        assert finding["failures"] and all(f["failed_rows"] > 0 for f in finding["failures"])
        assert names_task(finding["log_url"], f"validate.{finding['dataset']}")
    assert alert["run_id"].startswith("manual__")
    # The alert runs after the report task and links the page it published.
    report_url = pipeline.report_url()
    assert report_url == f"file://{pipeline.data}/lake/reports/ds={DS}/index.html"
    assert alert["report"]["url"] == report_url
    assert alert["report"]["published"] is True
    assert names_task(alert["report"]["task_url"], REPORT_TASK)
    assert_report_page(Path(report_url.removeprefix("file://")), DIMENSIONS + FACTS)
    # Only the rows that passed validation reach the mart.
    contacts = pipeline.xcom("validate.contacts")
    assert contacts["status"] == INTERFACE.status("validate", "quarantined")
    assert contacts["invalid_rows"] > 0
    assert pipeline.count("MART.MART_CONTACTS") == contacts["rows_out"]

    # Another run of the same ds. Airflow 2's `dags test` names a run after its logical date
    # (Airflow 3's after the time it starts): a new time keeps it from being the same run,
    # whose retries the binary still reports the new patterns to.
    result = pipeline.run_dag(f"{DS}T12:00:00+00:00", defect_rate=0.01)
    assert_run(pipeline, result, expected_states(), "success")
    assert len(pipeline.alerts("dq_alert")) == 1  # still only the first run's
    assert pipeline.count("MART.MART_CONTACTS") == contacts["rows_out"]


def test_a_corrupted_raw_file_is_rejected_and_nothing_is_loaded(pipeline):
    # The file lands corrupted but whole-sized, as a torn write leaves it: generate finds
    # its file complete (it checks the size) and leaves it; validate rejects it.
    dataset = INTERFACE.dataset(FACTS[-1])
    settings = {"SCALE_FACTOR": str(SCALE_FACTOR), "PIPELINE_DEFECT_RATE": "0"}
    generated = pipeline.binary("generate", dataset.name, "--ds", DS, **settings)
    raw_file = Path(generated["outputs"]["raw"].removeprefix("file://"))
    size = raw_file.stat().st_size
    raw_file.write_bytes(f'{{"{dataset.key}": "truncated'.encode().ljust(size - 1) + b"\n")

    result = pipeline.run_dag(defect_rate=0)
    validate = f"validate.{dataset.name}"
    expected = expected_states(NOT_PUBLISHED | {validate: "failed", "dq_alert": "success"})
    assert_run(pipeline, result, expected, "failed")
    assert pipeline.try_number(validate) == 1  # data rejected: no retry
    assert pipeline.xcom(validate)["status"] == INTERFACE.status("validate", "rejected")
    [failure] = pipeline.alerts("task_failure")
    assert (failure["task_id"], failure["exit_code"]) == (validate, DATA_REJECTED)
    [alert] = pipeline.alerts("dq_alert")
    assert [finding["dataset"] for finding in alert["datasets"]] == [dataset.name]
    # Nothing was published, and the report was still written: both alerts point at it.
    report_url = pipeline.report_url()
    assert failure["report"]["url"] == alert["report"]["url"] == report_url
    assert_report_page(Path(report_url.removeprefix("file://")), DIMENSIONS + FACTS)
    assert pipeline.xcom(REPORT_TASK)["datasets"] == list(DIMENSIONS + FACTS)  # rejected too


def test_a_crash_fails_without_retry_and_calls_the_failure_callback(pipeline, tmp_path):
    crashed = DIMENSIONS[0]
    crashing_binary = tmp_path / "crashing-marketing-pipeline"
    crashing_binary.write_text(
        "#!/bin/sh\n"
        f'if [ "$1 $2" = "generate {crashed}" ]; then echo "simulated crash" >&2; exit {BUG}; fi\n'
        f'exec "{BINARY}" "$@"\n'
    )
    crashing_binary.chmod(0o755)
    pipeline.env["PIPELINE_BINARY"] = str(crashing_binary)

    result = pipeline.run_dag(defect_rate=0)
    # Every fact is generated after every dimension (directly or through another fact).
    not_run = [f"generate.{fact}" for fact in FACTS] + [
        f"validate.{dataset}" for dataset in (crashed, *FACTS)
    ]
    expected = expected_states(
        NOT_PUBLISHED
        | dict.fromkeys(not_run, "upstream_failed")
        | {f"generate.{crashed}": "failed"}
    )
    assert_run(pipeline, result, expected, "failed")
    # A bug fails the same way every time: no retry (PIPELINE_DAG_RETRIES=1 would allow one).
    assert pipeline.try_number(f"generate.{crashed}") == 1
    [failure] = pipeline.alerts("task_failure")
    assert failure["task_id"] == f"generate.{crashed}"
    assert failure["exit_code"] == BUG
    assert failure["try_number"] == 1
    # The report covers the datasets that were validated.
    report_url = pipeline.report_url()
    assert failure["report"]["url"] == report_url
    validated = [name for name in DIMENSIONS if name != crashed]
    assert pipeline.xcom(REPORT_TASK)["datasets"] == validated
    assert_report_page(Path(report_url.removeprefix("file://")), validated)


@pytest.mark.skipif(AIRFLOW_2, reason="Airflow 2 runs always have a logical date")
def test_a_run_without_a_logical_date_processes_the_last_complete_day(pipeline):
    result = pipeline.run_dag_without_logical_date(defect_rate=0)
    assert_run(pipeline, result, expected_states(), "success")
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert pipeline.processed_days() == {yesterday}
    assert pipeline.count("MART.MART_CONTACTS") == 100


@pytest.mark.skipif(AIRFLOW_2, reason="Assets and DAG bundles are Airflow 3's")
def test_a_pipeline_run_triggers_the_dag_scheduled_on_the_marts_asset(pipeline):
    subprocess.run(
        [AIRFLOW, "dags", "unpause", "marts_consumer"],
        env=pipeline.env,
        check=True,
        capture_output=True,
    )
    result = pipeline.run_dag(defect_rate=0)
    assert_run(pipeline, result, expected_states(), "success")

    # The scheduler turns the queued asset event into a run of the downstream DAG.
    log = (pipeline.data / "scheduler.log").open("w")
    scheduler = subprocess.Popen(
        [AIRFLOW, "scheduler"],
        env=pipeline.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # A cold scheduler on a loaded 2-core runner can take minutes to start.
        deadline = time.monotonic() + 300
        while not (runs := pipeline.downstream_runs()):
            assert time.monotonic() < deadline, f"no marts_consumer run; see {log.name}"
            time.sleep(1)
    finally:
        stop_process_group(scheduler)
        log.close()
    assert runs == ["asset_triggered"]
    event = pipeline.asset_events(MARTS)[-1]
    assert (event["task"], event["ds"], event["status"]) == ("transform", DS, "transformed")
