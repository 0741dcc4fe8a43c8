"""Alerts through the providers' notifiers, SmtpNotifier (email) and SlackWebhookNotifier
(Slack), and an optional JSON-lines file.

Each channel is used when it is configured and skipped with a log line when not:
- email: Airflow Connection `smtp_default` and recipients in PIPELINE_ALERT_EMAIL
  (comma-separated); the sender is the Connection's `from_email`, or PIPELINE_ALERT_FROM;
- Slack: Airflow Connection `slack_default` (type Slack Incoming Webhook);
- file: PIPELINE_ALERT_LOG, a path each alert is appended to as one JSON line
  (for local runs, tests and log shippers).

Kinds: `task_failure` (any task failed), `dq_alert` (new data-quality failure patterns, from
validate or from transform's data tests) and `deadline_missed` (Airflow 3.1+).
"""

import asyncio
import html
import json
import logging
import os

from marketing_pipeline_tasks.compat import AsyncCallback, DeadlineAlert, DeadlineReference
from marketing_pipeline_tasks.connections import connection_or_none
from marketing_pipeline_tasks.report import REPORT_TASK, report_line, report_location
from marketing_pipeline_tasks.schedule import context_day
from marketing_pipeline_tasks.settings import Settings

SMTP_CONN_ID = "smtp_default"
SLACK_CONN_ID = "slack_default"

log = logging.getLogger(__name__)


def send_alert(
    kind: str, subject: str, text: str, details: dict, context: dict | None = None
) -> list[str]:
    """Send to every configured channel; return the names of the channels that failed.

    `context` is the task context, for the notifiers; None outside a task (a deadline).
    """
    log.warning("%s\n%s", subject, text)
    failed = []
    for channel, send in (("file", _append_to_alert_log), ("email", _email), ("slack", _slack)):
        try:
            # SmtpNotifier reads context["dag"] when it fills in the sender (provider 2.x).
            send(kind, subject, text, details, {"dag": None, **(context or {})})
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
    ds = context_day(context)
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
    send_alert("task_failure", subject, "\n".join(lines), details, context)


async def on_deadline_missed(allowed: str, context: dict, **_) -> None:
    """The DeadlineAlert's callback, run by the triggerer: alert that a run is late.

    `context` is what Airflow gives a deadline callback: the run (`dag_run`, as the REST API
    shows it) and the deadline.
    """
    run = context.get("dag_run") or {}
    details = {
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id"),
        "queued_at": run.get("queued_at"),
        "allowed": allowed,
        "deadline": str((context.get("deadline") or {}).get("deadline_time")),
    }
    subject = f"[{details['dag_id']}] run {details['run_id']} missed its deadline"
    text = "\n".join(f"{name}: {value}" for name, value in details.items())
    await asyncio.to_thread(send_alert, "deadline_missed", subject, text, details)


def dag_deadline(settings: Settings):
    """Airflow 3.1+: a DeadlineAlert when a run is not done `settings.deadline` after it was
    queued; None on older versions or when the setting is 0."""
    if DeadlineAlert is None or not settings.deadline:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=settings.deadline,
        callback=AsyncCallback(on_deadline_missed, kwargs={"allowed": str(settings.deadline)}),
    )


def _append_to_alert_log(kind: str, subject: str, text: str, details: dict, context) -> None:
    path = os.environ.get("PIPELINE_ALERT_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as alert_log:
            alert_log.write(json.dumps({"kind": kind, "subject": subject, **details}) + "\n")


def _email(kind: str, subject: str, text: str, details: dict, context) -> None:
    recipients = [
        r.strip() for r in os.environ.get("PIPELINE_ALERT_EMAIL", "").split(",") if r.strip()
    ]
    if connection_or_none(SMTP_CONN_ID) is None:
        log.info("No Airflow Connection %r: the %s alert is not emailed", SMTP_CONN_ID, kind)
        return
    if not recipients:
        log.info("PIPELINE_ALERT_EMAIL is not set: the %s alert is not emailed", kind)
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=recipients,
        from_email=os.environ.get("PIPELINE_ALERT_FROM") or None,
        subject=subject,
        html_content=f"<pre>{html.escape(text)}</pre>",
        smtp_conn_id=SMTP_CONN_ID,
    ).notify(context)


def _slack(kind: str, subject: str, text: str, details: dict, context) -> None:
    if connection_or_none(SLACK_CONN_ID) is None:
        log.info("No Airflow Connection %r: the %s alert is not sent to Slack", SLACK_CONN_ID, kind)
        return
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    SlackWebhookNotifier(
        slack_webhook_conn_id=SLACK_CONN_ID, text=f"*{subject}*\n```{text}```"
    ).notify(context)
