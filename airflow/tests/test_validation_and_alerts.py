"""The branch on validation metrics, the DQ alert and the failure callback, with stand-in XComs;
alerts delivered by the providers' notifiers to a real SMTP server (aiosmtpd) and a real HTTP
server standing in for Slack's webhook endpoint, both on 127.0.0.1."""

import asyncio
import email
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pendulum
import pytest
from aiosmtpd.controller import Controller

import marketing_pipeline_tasks.report as report
from marketing_pipeline_tasks.alerts import dag_deadline, on_deadline_missed, on_task_failure
from marketing_pipeline_tasks.compat import (
    AirflowException,
    AirflowSkipException,
    DeadlineAlert,
    DeadlineReference,
)
from marketing_pipeline_tasks.exit_codes import BUG, TRANSIENT, raise_for_exit_code
from marketing_pipeline_tasks.settings import DATASETS, DIMENSIONS, FACTS, Settings
from marketing_pipeline_tasks.validation import (
    PASSED_GATE,
    REJECTED_GATE,
    choose_publish_path,
    dq_alert,
)
from support import INTERFACE, FakeTaskInstance

DS = "2025-05-25"
RUN = SimpleNamespace(logical_date=pendulum.datetime(2025, 5, 25, tz="UTC"))
REPORT_URL = f"s3://lake/pipeline/reports/ds={DS}/index.html"
REPORTED = {
    "status": INTERFACE.status(report.REPORT_TASK, "reported"),
    "outputs": {"report": REPORT_URL},
}

# Stand-in validate metrics; any dataset will do, but a dimension comes before a fact.
DIMENSION = DIMENSIONS[0]
FACT = FACTS[0]
CLEAN = {
    "status": INTERFACE.status("validate", "validated"),
    "rows_in": 20,
    "invalid_rows": 0,
    "has_failure_delta": False,
}
NEW_FAILURE = {
    "status": INTERFACE.status("validate", "quarantined"),
    "rows_in": 100,
    "invalid_rows": 2,
    "failed": {"not_null": 1, "email_format": 1},
    "has_failure_delta": True,
    "new_signatures": ["sig-email"],
    "failures": [
        {
            "check": "not_null",
            "column": "contact_id",
            "rule": "not null",
            "failed_rows": 1,
            "signature": "sig-known",
            "sample_keys": [None],
        },
        {
            "check": "email_format",
            "column": "email",
            "rule": "email",
            "failed_rows": 1,
            "signature": "sig-email",
            "sample_keys": ["c-42"],
        },
    ],
}
REJECTED = {
    "status": INTERFACE.status("validate", "rejected"),
    "rows_in": 0,
    "invalid_rows": 0,
    "failed": {"schema": 1},
    "has_failure_delta": True,
    "new_signatures": ["sig-schema"],
    "error": "columns do not match the catalogue",
}


def task_seeing(task_id, report_metrics=None, **metrics_by_dataset):
    """A TaskInstance that pulls these validate XComs (clean metrics for the other datasets)
    and, when given, the report task's."""
    xcoms = {f"validate.{d}": metrics_by_dataset.get(d, CLEAN) for d in DATASETS}
    xcoms[report.REPORT_TASK] = report_metrics
    return FakeTaskInstance(task_id=task_id, xcoms=xcoms)


def branch_task(**metrics_by_dataset):
    return task_seeing("check_validation", **metrics_by_dataset)


def alert_task(report_metrics=None, **metrics_by_dataset):
    return task_seeing("dq_alert", report_metrics, **metrics_by_dataset)


@pytest.fixture
def alert_log(monkeypatch, tmp_path):
    path = tmp_path / "alerts.jsonl"
    monkeypatch.setenv("PIPELINE_ALERT_LOG", str(path))

    def alerts():
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return alerts


def test_all_validated_or_quarantined_publishes():
    assert choose_publish_path(branch_task()) == PASSED_GATE
    assert choose_publish_path(branch_task(**{FACT: NEW_FAILURE})) == PASSED_GATE


def test_a_rejected_dataset_stops_publishing():
    assert choose_publish_path(branch_task(**{FACT: REJECTED})) == REJECTED_GATE


@pytest.mark.parametrize("status", INTERFACE.failure_statuses)
def test_a_failed_or_skipped_validate_task_stops_publishing(status):
    assert choose_publish_path(branch_task(**{FACT: {**REJECTED, "status": status}})) == (
        REJECTED_GATE
    )


def test_a_dataset_without_metrics_stops_publishing():
    # A validate task that crashed or never ran (upstream failed) pushed no XCom.
    assert choose_publish_path(branch_task(**{DIMENSION: None})) == REJECTED_GATE


def test_dq_alert_skips_when_no_failure_pattern_is_new(alert_log):
    known = {**NEW_FAILURE, "has_failure_delta": False, "new_signatures": []}
    with pytest.raises(AirflowSkipException):
        dq_alert(alert_task(**{FACT: known}), run_id="manual__1", dag_run=RUN)
    assert alert_log() == []


def test_dq_alert_carries_dataset_check_counts_samples_run_and_log_link(alert_log):
    findings = dq_alert(
        alert_task(**{FACT: NEW_FAILURE, DIMENSION: REJECTED}), run_id="manual__1", dag_run=RUN
    )
    assert [f["dataset"] for f in findings] == [DIMENSION, FACT]  # in DATASETS order
    [alert] = alert_log()
    assert alert["kind"] == "dq_alert"
    assert alert["run_id"] == "manual__1"
    rejected, new_failure = alert["datasets"]
    # Only the new pattern: not_null on contact_id was seen before.
    assert [(f["check"], f["failed_rows"], f["sample_keys"]) for f in new_failure["failures"]] == [
        ("email_format", 1, ["c-42"])
    ]
    assert new_failure["log_url"].endswith(f"/tasks/validate.{FACT}")
    # A rejected file has counts per check and the binary's error.
    assert rejected["failures"] == [{"check": "schema", "failed_rows": 1}]
    assert rejected["error"] == "columns do not match the catalogue"


TESTS_FAILED = {
    "status": INTERFACE.status("transform", "tests_failed"),
    "error": "data tests failed: not_null_mart_contacts_email",
    "has_failure_delta": True,
    "new_signatures": ["sig-new-test"],
    "tests": [
        {"test": "unique_mart_contacts_contact_id", "status": "pass", "offending_rows": 0},
        {
            "test": "not_null_mart_contacts_email",
            "status": "fail",
            "offending_rows": 3,
            "signature": "sig-new-test",
            "sample": [["c-1", None]],
        },
        {
            "test": "accepted_values_mart_forms_kind",
            "status": "warn",
            "offending_rows": 1,
            "signature": "sig-known-test",
        },
    ],
}


def test_transform_data_test_failures_alert_like_validation_failures(alert_log):
    ti = alert_task()
    ti.xcoms["transform"] = TESTS_FAILED
    [finding] = dq_alert(ti, run_id="manual__1", dag_run=RUN)
    assert finding["task"] == "transform"
    assert finding["error"] == TESTS_FAILED["error"]
    # Only the new pattern: the warning's was reported before.
    assert [(f["test"], f["outcome"], f["failed_rows"]) for f in finding["failures"]] == [
        ("not_null_mart_contacts_email", "fail", 3)
    ]
    assert finding["log_url"].endswith("/tasks/transform")
    [alert] = alert_log()
    assert alert["kind"] == "dq_alert"
    assert alert["datasets"] == [finding]


def test_known_data_test_failures_do_not_alert_again(alert_log):
    ti = alert_task()
    ti.xcoms["transform"] = {**TESTS_FAILED, "has_failure_delta": False, "new_signatures": []}
    with pytest.raises(AirflowSkipException):
        dq_alert(ti, run_id="manual__2", dag_run=RUN)
    assert alert_log() == []


def test_a_missed_deadline_alerts_with_the_run_airflow_names(alert_log):
    context = {
        "dag_run": {"dag_id": "marketing_pipeline", "dag_run_id": "scheduled__x", "queued_at": "t"},
        "deadline": {"id": "d-1", "deadline_time": "2025-05-26T06:00:00+00:00"},
    }
    asyncio.run(on_deadline_missed(allowed="6:00:00", context=context))
    [alert] = alert_log()
    assert alert["kind"] == "deadline_missed"
    assert alert["run_id"] == "scheduled__x"
    assert alert["allowed"] == "6:00:00"
    assert alert["deadline"] == "2025-05-26T06:00:00+00:00"


def test_the_deadline_alert_is_configurable_and_off_at_zero(monkeypatch):
    monkeypatch.setenv("PIPELINE_DEADLINE_S", "3600")
    deadline = dag_deadline(Settings.from_env())
    if DeadlineAlert is None:  # Airflow before 3.1 has no deadline alerts
        assert deadline is None
    else:
        assert deadline.interval == timedelta(hours=1)
        assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    monkeypatch.setenv("PIPELINE_DEADLINE_S", "0")
    assert dag_deadline(Settings.from_env()) is None


def failed_task_context(exit_code, task_id=f"upload.{FACT}", report_metrics=None):
    try:
        raise_for_exit_code(exit_code, "unreachable object store")
    except AirflowException as error:
        exception = error
    ti = FakeTaskInstance(task_id=task_id, try_number=4, xcoms={report.REPORT_TASK: report_metrics})
    return {"ti": ti, "exception": exception, "ds": DS}


def test_failure_callback_names_the_task_exit_code_error_and_log(alert_log):
    on_task_failure(failed_task_context(TRANSIENT))
    [alert] = alert_log()
    assert alert["kind"] == "task_failure"
    assert alert["task_id"] == f"upload.{FACT}"
    assert alert["run_id"] == "manual__2025-05-25"
    assert alert["try_number"] == 4
    assert alert["exit_code"] == TRANSIENT
    assert "unreachable object store" in alert["error"]
    assert alert["log_url"].endswith(f"/tasks/upload.{FACT}")


def test_without_connections_alerts_only_log_why(alert_log, caplog):
    caplog.set_level("INFO")
    on_task_failure(failed_task_context(BUG))
    assert "No Airflow Connection 'smtp_default'" in caplog.text
    assert "No Airflow Connection 'slack_default'" in caplog.text


class MailBox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"


class SlackWebhookEndpoint(BaseHTTPRequestHandler):
    """Answers a Slack incoming webhook POST as Slack does ("ok") and keeps its JSON body."""

    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def smtp_connection(port: int) -> str:
    extra = {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com"}
    extra["retry_limit"] = 1
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


@pytest.fixture
def notifiers(monkeypatch):
    """An SMTP server and a Slack webhook endpoint on 127.0.0.1, and the Connections to them."""
    mailbox = MailBox()
    smtp_server = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp_server.start()
    SlackWebhookEndpoint.received = []
    slack_server = ThreadingHTTPServer(("127.0.0.1", 0), SlackWebhookEndpoint)
    threading.Thread(target=slack_server.serve_forever, daemon=True).start()
    slack_url = f"http://127.0.0.1:{slack_server.server_address[1]}/services"
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(smtp_server.port))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_DEFAULT",
        json.dumps({"conn_type": "slackwebhook", "host": slack_url, "password": "T0/B0/x"}),
    )
    monkeypatch.setenv("PIPELINE_ALERT_EMAIL", "data@example.com, oncall@example.com")
    yield mailbox.messages, SlackWebhookEndpoint.received
    smtp_server.stop()
    slack_server.shutdown()


def test_with_connections_alerts_go_by_email_and_slack(notifiers):
    emails, slack_messages = notifiers
    dq_alert(alert_task(**{FACT: NEW_FAILURE}), run_id="manual__1", dag_run=RUN)
    [(recipients, message)] = emails
    assert recipients == ["data@example.com", "oncall@example.com"]
    assert message["From"] == "airflow@example.com"
    assert "manual__1" in message["Subject"]
    html = next(part for part in message.walk() if part.get_content_type() == "text/html")
    assert "email_format on email (email): 1 rows" in html.get_payload(decode=True).decode()
    [(path, body)] = slack_messages
    assert path == "/services/T0/B0/x"
    assert FACT in body["text"]


def test_a_failing_channel_fails_the_dq_alert_after_trying_the_others(monkeypatch, notifiers):
    emails, slack_messages = notifiers
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(free_port()))  # nobody there
    with pytest.raises(AirflowException, match="email"):
        dq_alert(alert_task(**{FACT: NEW_FAILURE}), run_id="manual__1", dag_run=RUN)
    assert emails == []
    assert len(slack_messages) == 1


# --- where the data-quality report is: the alerts and the report task's extra link ----------


@pytest.mark.parametrize(
    "lake_url, url",
    [
        ("file:///data/lake", f"file:///data/lake/reports/ds={DS}/index.html"),
        ("file:///data/lake/", f"file:///data/lake/reports/ds={DS}/index.html"),
        ("file://./data/lake", f"file://./data/lake/reports/ds={DS}/index.html"),
        ("s3://lake", f"s3://lake/reports/ds={DS}/index.html"),
        ("s3://lake/pipeline/", REPORT_URL),
        ("gs://lake", None),
        ("file://", None),
    ],
)
def test_the_report_url_is_computed_as_the_binary_does(lake_url, url):
    # The binary's storage `url` of the key reports/ds=D/index.html (end-to-end tests compare
    # it with the report task's outputs.report, on file:// and on s3://).
    assert report.lake_object_url(lake_url, report.REPORT_KEY.format(ds=DS)) == url


def test_dq_alert_says_where_the_report_will_be_published(monkeypatch, alert_log, caplog):
    # The local runner hands the worker's PIPELINE_LAKE_URL to the binary: the DAG knows it.
    monkeypatch.setenv("PIPELINE_LAKE_URL", "s3://lake/pipeline")
    dq_alert(alert_task(**{FACT: NEW_FAILURE}), run_id="manual__1", dag_run=RUN)
    [alert] = alert_log()
    assert alert["ds"] == DS
    assert alert["report"] == {
        "url": REPORT_URL,
        "published": False,
        "task_url": "http://airflow/dags/marketing_pipeline/runs/r/tasks/report",
    }
    assert f"Data-quality report for {DS} (published at the end of the run" in caplog.text
    assert f"): {REPORT_URL}" in caplog.text


def test_without_the_lake_url_the_alert_points_at_the_report_tasks_link(monkeypatch, alert_log):
    # A pod reads the lake URL from its ConfigMap: the DAG's own environment does not tell.
    monkeypatch.setenv("PIPELINE_RUNNER", "kubernetes")
    monkeypatch.setenv("PIPELINE_LAKE_URL", "s3://somewhere-else")
    dq_alert(alert_task(**{FACT: NEW_FAILURE}), run_id="manual__1", dag_run=RUN)
    [alert] = alert_log()
    assert alert["report"]["url"] is None
    location = alert["report"]
    assert report.report_line(location, DS) == (
        f"Data-quality report for {DS}: published at the end of the run by the report task;"
        " its 'Data-quality report' link: http://airflow/dags/marketing_pipeline/runs/r/tasks/report"
    )


def test_a_published_report_is_named_by_the_url_the_report_task_gave(monkeypatch, alert_log):
    monkeypatch.setenv("PIPELINE_RUNNER", "kubernetes")
    dq_alert(alert_task(REPORTED, **{FACT: NEW_FAILURE}), run_id="manual__1", dag_run=RUN)
    [alert] = alert_log()
    assert (alert["report"]["url"], alert["report"]["published"]) == (REPORT_URL, True)
    assert report.report_line(alert["report"], DS) == f"Data-quality report for {DS}: {REPORT_URL}"


def test_the_report_tasks_page_drops_the_alerting_tasks_try_number():
    ti = FakeTaskInstance(task_id="dq_alert")
    ti.log_url = "http://airflow/dags/marketing_pipeline/runs/r/tasks/dq_alert?try_number=2"
    assert report.task_page_url(ti, "report") == (
        "http://airflow/dags/marketing_pipeline/runs/r/tasks/report"
    )


def test_failure_callback_says_where_the_report_will_be(monkeypatch, alert_log):
    monkeypatch.setenv("PIPELINE_LAKE_URL", "s3://lake/pipeline/")
    on_task_failure(failed_task_context(TRANSIENT))
    [alert] = alert_log()
    assert alert["ds"] == DS
    assert alert["report"]["url"] == REPORT_URL
    assert alert["report"]["published"] is False


def test_a_failed_report_task_alerts_without_a_report(monkeypatch, alert_log):
    monkeypatch.setenv("PIPELINE_LAKE_URL", "s3://lake/pipeline/")
    on_task_failure(failed_task_context(TRANSIENT, task_id=report.REPORT_TASK))
    [alert] = alert_log()
    assert alert["task_id"] == report.REPORT_TASK
    assert "report" not in alert


def test_the_alert_goes_out_when_the_report_xcom_cannot_be_read(alert_log):
    context = failed_task_context(BUG)

    def unreachable(task_ids):
        raise ConnectionError("API server down")

    context["ti"].xcom_pull = unreachable
    on_task_failure(context)
    [alert] = alert_log()
    assert alert["report"]["published"] is False


class StubXCom:
    values: dict = {}

    @classmethod
    def get_value(cls, *, ti_key, key):
        return cls.values.get((ti_key.task_id, key))


@pytest.mark.parametrize(
    "metrics, link",
    [
        (REPORTED, REPORT_URL),
        # Skipped (nothing validated) or failed: metrics without a report; no XCom at all.
        ({"status": INTERFACE.failure_statuses[-1], "outputs": {}}, ""),
        ({**REPORTED, "status": INTERFACE.failure_statuses[0]}, ""),
        (None, ""),
    ],
)
def test_the_report_link_is_the_report_tasks_outputs_report(monkeypatch, metrics, link):
    monkeypatch.setattr(report, "XCom", StubXCom)
    StubXCom.values = {(report.REPORT_TASK, "return_value"): metrics}
    ti_key = FakeTaskInstance(task_id=report.REPORT_TASK)
    assert report.ReportLink().get_link(None, ti_key=ti_key) == link
    assert report.ReportLink().name == "Data-quality report"
    if hasattr(report.BaseOperatorLink, "xcom_key"):  # Airflow 3: the XCom the UI reads
        assert report.ReportLink().xcom_key == "_link_ReportLink"
