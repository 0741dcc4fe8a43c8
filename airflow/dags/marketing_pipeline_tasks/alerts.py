"""Alerts by email (SMTP provider), Slack (Slack webhook provider) and an optional JSON-lines file.

Each channel is used when it is configured and skipped with a log line when not:
- email: Airflow Connection `smtp_default` and recipients in PIPELINE_ALERT_EMAIL
  (comma-separated);
- Slack: Airflow Connection `slack_default` (type Slack Incoming Webhook);
- file: PIPELINE_ALERT_LOG, a path each alert is appended to as one JSON line
  (for tests and for log shippers).
"""

import html
import json
import logging
import os

from marketing_pipeline_tasks.connections import connection_or_none
from marketing_pipeline_tasks.report import REPORT_TASK, report_line, report_location

SMTP_CONN_ID = "smtp_default"
SLACK_CONN_ID = "slack_default"

log = logging.getLogger(__name__)


def send_alert(kind: str, subject: str, text: str, details: dict) -> list[str]:
    """Send to every configured channel; return the names of the channels that failed."""
    log.warning("%s\n%s", subject, text)
    failed = []
    for channel, send in (("file", _append_to_alert_log), ("email", _email), ("slack", _slack)):
        try:
            send(kind, subject, text, details)
        except Exception:
            # One broken channel must not keep the alert from the others.
            log.exception("Could not send the %s alert by %s", kind, channel)
            failed.append(channel)
    return failed


def on_task_failure(context) -> None:
    """on_failure_callback: which task failed, why (exit code and error), and its log.

    Also where the run's data-quality report is or will be (the report task runs at the end
    of every run, whatever failed before it), unless the report task is the one that failed.
    """
    ti = context["ti"]
    exception = context.get("exception")
    ds = context.get("ds")
    details = {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "ds": ds,
        "try_number": ti.try_number,
        "exit_code": getattr(exception, "exit_code", None),
        "error": str(exception) if exception else None,
        "log_url": ti.log_url,
    }
    lines = [f"{name}: {value}" for name, value in details.items()]
    if ti.task_id != REPORT_TASK:
        details["report"] = report_location(ti, ds)
        lines.append(report_line(details["report"], ds))
    subject = f"[{ti.dag_id}] task {ti.task_id} failed in run {ti.run_id}"
    send_alert("task_failure", subject, "\n".join(lines), details)


def _append_to_alert_log(kind: str, subject: str, text: str, details: dict) -> None:
    path = os.environ.get("PIPELINE_ALERT_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as alert_log:
            alert_log.write(json.dumps({"kind": kind, "subject": subject, **details}) + "\n")


def _email(kind: str, subject: str, text: str, details: dict) -> None:
    recipients = [
        r.strip() for r in os.environ.get("PIPELINE_ALERT_EMAIL", "").split(",") if r.strip()
    ]
    if connection_or_none(SMTP_CONN_ID) is None:
        log.info("No Airflow Connection %r: the %s alert is not emailed", SMTP_CONN_ID, kind)
        return
    if not recipients:
        log.info("PIPELINE_ALERT_EMAIL is not set: the %s alert is not emailed", kind)
        return
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as smtp:
        smtp.send_email_smtp(
            to=recipients, subject=subject, html_content=f"<pre>{html.escape(text)}</pre>"
        )


def _slack(kind: str, subject: str, text: str, details: dict) -> None:
    if connection_or_none(SLACK_CONN_ID) is None:
        log.info("No Airflow Connection %r: the %s alert is not sent to Slack", SLACK_CONN_ID, kind)
        return
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    SlackWebhookHook(slack_webhook_conn_id=SLACK_CONN_ID).send(text=f"*{subject}*\n```{text}```")
