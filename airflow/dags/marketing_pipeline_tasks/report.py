"""The data-quality report of a run's ds: where it is, for the alerts and the task's extra link.

The `report` task (`marketing-pipeline report --ds D`) writes one HTML page per ds to the lake,
at `reports/ds=D/index.html`, and its metrics (the task's XCom) name it in `outputs.report`.
Alerts fire before it runs (dq_alert after validate, the failure callback as a task fails), so
they say where it will be: the binary's URL once the task has run; else the URL computed as the
binary computes it, when the DAG knows the lake (the local runner hands the worker's environment,
PIPELINE_LAKE_URL included, to the binary; a pod reads its ConfigMap, which the DAG does not);
and always the report task's page in Airflow, whose "Data-quality report" link opens it.
"""

import logging
import os
import re

from marketing_pipeline_tasks.compat import BaseOperatorLink, XCom
from marketing_pipeline_tasks.interface import interface
from marketing_pipeline_tasks.settings import LOCAL, Settings

REPORT_TASK = interface().task("report").name
REPORTED = interface().status(REPORT_TASK, "reported")
# Where the binary publishes the page in the lake (src/tasks/report).
REPORT_KEY = "reports/ds={ds}/index.html"
LINK_NAME = "Data-quality report"

log = logging.getLogger(__name__)


def lake_object_url(lake_url: str, key: str) -> str | None:
    """The URL the binary gives the lake object `key` (its storage `url`); None if not a lake URL.

    file://PATH -> file://PATH/KEY; s3://BUCKET[/PREFIX] -> s3://BUCKET/[PREFIX/]KEY.
    """
    scheme, _, location = lake_url.partition("://")
    if scheme == "file" and location:
        return f"file://{location.rstrip('/')}/{key}"
    if scheme == "s3" and location.strip("/"):
        bucket, _, prefix = location.partition("/")
        prefix = prefix.strip("/")
        return f"s3://{bucket}/{prefix}/{key}" if prefix else f"s3://{bucket}/{key}"
    return None


def expected_report_url(ds: str | None) -> str | None:
    """Where the report of `ds` is published, when the DAG knows the binary's lake URL.

    Only with the local runner, whose binary gets the worker's environment, and only when
    PIPELINE_LAKE_URL is set there (the binary's default is relative to the worker's cwd).
    """
    lake_url = os.environ.get("PIPELINE_LAKE_URL")
    if not ds or not lake_url or Settings.from_env().runner != LOCAL:
        return None
    return lake_object_url(lake_url, REPORT_KEY.format(ds=ds))


def published_report_url(metrics) -> str | None:
    """`outputs.report` of the report task's metrics, when it reported."""
    if not isinstance(metrics, dict) or metrics.get("status") != REPORTED:
        return None
    url = (metrics.get("outputs") or {}).get("report")
    return url if isinstance(url, str) and url else None


def task_page_url(ti, task_id: str) -> str:
    """Another task's page in this run: `ti`'s log link with the task id swapped, no try number."""
    url = ti.log_url.replace(ti.task_id, task_id)
    return re.sub(r"\?try_number=\d+$", "", url)


def report_location(ti, ds: str | None) -> dict:
    """Where the run's report is (`published`) or will be: its URL when known, its task's page."""
    try:
        published = published_report_url(ti.xcom_pull(task_ids=REPORT_TASK))
    except Exception:
        # An alert is sent in bad times: the report's whereabouts must not keep it from going.
        log.exception("Could not read the %s task's XCom", REPORT_TASK)
        published = None
    return {
        "url": published or expected_report_url(ds),
        "published": published is not None,
        "task_url": task_page_url(ti, REPORT_TASK),
    }


def report_line(location: dict, ds: str | None) -> str:
    """One line for an alert's text."""
    day = f" for {ds}" if ds else ""
    if location["published"]:
        return f"Data-quality report{day}: {location['url']}"
    if location["url"]:
        return (
            f"Data-quality report{day} (published at the end of the run by the"
            f" {REPORT_TASK} task, {location['task_url']}): {location['url']}"
        )
    return (
        f"Data-quality report{day}: published at the end of the run by the {REPORT_TASK} task;"
        f" its '{LINK_NAME}' link: {location['task_url']}"
    )


class ReportLink(BaseOperatorLink):
    """The report task's extra link: `outputs.report` of its metrics (its XCom).

    Airflow 3 computes it on the worker when the task ends and keeps it as an XCom
    (`_link_ReportLink`), which the UI reads: no plugin is needed. Airflow 2.10/2.11 resolve
    links in the webserver and show only links registered by a plugin; this project deploys
    only the dags folder, so there the URL is in the XCom and the alerts, not on a button.
    """

    name = LINK_NAME

    def get_link(self, operator, *, ti_key) -> str:
        return published_report_url(XCom.get_value(ti_key=ti_key, key="return_value")) or ""
