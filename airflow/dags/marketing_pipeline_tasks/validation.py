"""What the DAG does with the validate and transform tasks' metrics (their XComs): the branch
and the DQ alert."""

import logging

from marketing_pipeline_tasks.alerts import send_alert
from marketing_pipeline_tasks.compat import AirflowException, AirflowSkipException
from marketing_pipeline_tasks.interface import interface
from marketing_pipeline_tasks.report import report_line, report_location
from marketing_pipeline_tasks.schedule import processing_day
from marketing_pipeline_tasks.settings import DATASETS

VALIDATE_GROUP = interface().task("validate").name
TRANSFORM_TASK = interface().task("transform").name
PASSED_GATE = "validation_passed"
REJECTED_GATE = "validation_rejected"

# Validate statuses whose valid slice may be published, checked against the statuses the
# binary reports. Anything else (rejected, failed, skipped, a status this DAG does not
# know yet, or no metrics at all because the task never ran) stops the load.
PUBLISHABLE = tuple(
    interface().status(VALIDATE_GROUP, status) for status in ("validated", "quarantined")
)

log = logging.getLogger(__name__)


def validate_task_id(dataset: str) -> str:
    return f"{VALIDATE_GROUP}.{dataset}"


def validation_metrics(ti) -> dict[str, dict]:
    """Each dataset's validate metrics; {} for a task that pushed none."""
    return {dataset: ti.xcom_pull(task_ids=validate_task_id(dataset)) or {} for dataset in DATASETS}


def choose_publish_path(ti, **_) -> str:
    """Branch: publish, load and transform only when every dataset validated."""
    not_publishable = {
        dataset: metrics.get("status", "no metrics")
        for dataset, metrics in validation_metrics(ti).items()
        if metrics.get("status") not in PUBLISHABLE
    }
    if not_publishable:
        log.warning("Not publishing, loading or transforming; validation: %s", not_publishable)
        return REJECTED_GATE
    return PASSED_GATE


def new_failures(metrics: dict) -> list[dict]:
    """The failing checks whose pattern (dataset, check, column, rule) is new."""
    new_signatures = set(metrics.get("new_signatures", []))
    failures = [f for f in metrics.get("failures", []) if f.get("signature") in new_signatures]
    # A rejected file (unreadable, wrong columns) has no per-check list, only counts.
    return failures or [
        {"check": check, "failed_rows": rows} for check, rows in metrics.get("failed", {}).items()
    ]


def transform_finding(ti) -> list[dict]:
    """Transform's data tests that failed or warned with a new pattern, as one finding."""
    metrics = ti.xcom_pull(task_ids=TRANSFORM_TASK) or {}
    if not metrics.get("has_failure_delta"):
        return []
    new_signatures = set(metrics.get("new_signatures", []))
    failures = [
        {
            "check": "data_test",
            "test": test["test"],
            "outcome": test["status"],
            "failed_rows": test["offending_rows"],
            "sample": test.get("sample"),
        }
        for test in metrics.get("tests", [])
        if test.get("signature") in new_signatures
    ]
    return [
        {
            "task": TRANSFORM_TASK,
            "status": metrics.get("status"),
            "error": metrics.get("error"),
            "failures": failures,
            "log_url": ti.log_url.replace(ti.task_id, TRANSFORM_TASK),
        }
    ]


def dq_alert(ti, run_id, dag_run, **context) -> list[dict]:
    """One alert per run listing every new failure pattern (has_failure_delta): the datasets'
    checks in validate, and transform's data tests.

    A known pattern recurring does not alert again: the binary only sets has_failure_delta
    for signatures it has not recorded before. The alert also links the ds's data-quality
    report, which the report task published just before (or says where it would be).
    """
    ds = processing_day(dag_run)
    findings = [
        {
            "task": validate_task_id(dataset),
            "dataset": dataset,
            "status": metrics.get("status"),
            "rows_in": metrics.get("rows_in"),
            "invalid_rows": metrics.get("invalid_rows"),
            "error": metrics.get("error"),
            "failures": new_failures(metrics),
            # The validate task's log: this task's own link with the task id swapped.
            "log_url": ti.log_url.replace(ti.task_id, validate_task_id(dataset)),
        }
        for dataset, metrics in validation_metrics(ti).items()
        if metrics.get("has_failure_delta")
    ] + transform_finding(ti)
    if not findings:
        raise AirflowSkipException("No new data-quality failure pattern")

    report = report_location(ti, ds)
    subject = f"[{ti.dag_id}] new data-quality failures in run {run_id}"
    text = _dq_text(run_id, findings) + "\n" + report_line(report, ds)
    details = {"run_id": run_id, "ds": ds, "datasets": findings, "report": report}
    context = {**context, "ti": ti, "run_id": run_id, "dag_run": dag_run}
    failed_channels = send_alert("dq_alert", subject, text, details, context)
    if failed_channels:
        raise AirflowException(f"DQ alert not delivered by: {', '.join(failed_channels)}")
    return findings


def _dq_text(run_id: str, findings: list[dict]) -> str:
    lines = [f"New data-quality failure patterns in run {run_id}:"]
    for finding in findings:
        if "dataset" in finding:
            lines.append(
                f"{finding['dataset']}: {finding['status']}, {finding['invalid_rows']} of "
                f"{finding['rows_in']} rows quarantined; log: {finding['log_url']}"
            )
        else:
            lines.append(
                f"{finding['task']} data tests: {finding['status']}; log: {finding['log_url']}"
            )
        if finding["error"]:
            lines.append(f"  error: {finding['error']}")
        for failure in finding["failures"]:
            if "test" in failure:
                lines.append(
                    f"  - {failure['test']} ({failure['outcome']}): {failure['failed_rows']} rows"
                )
                continue
            where = f" on {failure['column']} ({failure['rule']})" if "column" in failure else ""
            samples = f", e.g. {failure['sample_keys']}" if failure.get("sample_keys") else ""
            lines.append(f"  - {failure['check']}{where}: {failure['failed_rows']} rows{samples}")
    return "\n".join(lines)
