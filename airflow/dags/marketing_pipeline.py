"""
# marketing_pipeline

Daily ELT of the marketing data: every task runs one subcommand of the
`marketing-pipeline` binary for the run's `ds` (see the repository README). The
tasks, datasets and exit codes come from the binary's interface
(`marketing_pipeline_tasks/interface.json`, the output of `marketing-pipeline describe`).

```
generate:  dimensions (parallel) -> each fact after the facts it references
validate:  one task per dataset, after its generate task
check_validation (branch on the validate metrics)
  every dataset validated or quarantined -> validation_passed -> upload -> load -> transform
  any dataset rejected or missing         -> validation_rejected -> end (fails the run)
report:    after transform, whatever happened before it -> end
dq_alert:  after the report, whatever happened before it: alerts once per new failure pattern
           (has_failure_delta) in the validate metrics and in transform's data tests
```

**The day a run processes** (`--ds`): the day of its data interval. The schedule is
`CronDataIntervalTimetable` at midnight UTC on Airflow 3 and 2.10 alike, so the run after
midnight processes the day that just ended. A run triggered with a logical date processes that
date; one triggered without (Airflow 3) the day before it was triggered.

**Timeouts**: every task has an `execution_timeout` (and its pod an `active_deadline_seconds`),
a run a `dagrun_timeout`, and on Airflow 3.1+ a deadline alert when it is late; all settings.

**Assets**: upload updates `marketing_pipeline.lake.<dataset>`, load
`marketing_pipeline.raw.<dataset>`, transform `marketing_pipeline.marts`; each event's `extra`
holds the task's metrics. Downstream DAGs schedule on them. The tasks report their inputs and
outputs to OpenLineage when its provider is installed.

**Data-quality report**: `report` writes the ds's HTML report to the lake
(`reports/ds=<ds>/index.html`) at the end of every run, also when a file was rejected or a
task failed (skipped when nothing was validated). Its metrics (XCom) name the page in
`outputs.report`; the task's **Data-quality report** link opens it, and the DQ and failure
alerts say where it is published.

**Exit codes**: the interface says, for each, whether the task succeeds (the metrics
JSON is the XCom), is skipped, fails without retry, or fails and is retried with
exponential backoff (table below). Every failure calls `on_task_failure` (email,
Slack, alert file).

**Runner** (`PIPELINE_RUNNER`): `local` runs the binary (`PIPELINE_BINARY`) on the
worker with credentials from the `aws_default` / `snowflake_default` Connections;
`kubernetes`, `eks` and `gke` run each task in a pod of `PIPELINE_IMAGE`, with settings
from the ConfigMap `PIPELINE_CONFIGMAP` and credentials from the Secret `PIPELINE_SECRET`.
"""

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator

from marketing_pipeline_tasks.alerts import dag_deadline, on_task_failure
from marketing_pipeline_tasks.compat import DAG, EXPONENTIAL_BACKOFF, TaskGroup
from marketing_pipeline_tasks.interface import describe_md, interface
from marketing_pipeline_tasks.params import PARAMS
from marketing_pipeline_tasks.report import REPORT_TASK, ReportLink
from marketing_pipeline_tasks.schedule import MACROS, timetable
from marketing_pipeline_tasks.settings import DATASETS, GENERATE_UPSTREAM, Settings
from marketing_pipeline_tasks.tasks import pipeline_task
from marketing_pipeline_tasks.validation import (
    PASSED_GATE,
    REJECTED_GATE,
    VALIDATE_GROUP,
    choose_publish_path,
    dq_alert,
)

settings = Settings.from_env()
# Airflow 3.1+ only; None elsewhere, and then not passed (2.10 has no such argument).
deadline = dag_deadline(settings)

with DAG(
    dag_id="marketing_pipeline",
    description="Generate, validate, publish, load and transform the marketing data",
    doc_md=__doc__ + "\n" + describe_md(interface()),
    schedule=timetable(),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=settings.dagrun_timeout,
    tags=["marketing", "elt"],
    params=PARAMS,
    user_defined_macros=MACROS,
    default_args={
        "owner": "data-engineering",
        "retries": settings.retries,
        "retry_delay": settings.retry_delay,
        "retry_exponential_backoff": EXPONENTIAL_BACKOFF,  # the delay doubles
        "max_retry_delay": settings.max_retry_delay,
        "execution_timeout": settings.task_timeout,
        "on_failure_callback": on_task_failure,
    },
    **({"deadline": deadline} if deadline else {}),
) as dag:
    with TaskGroup("generate"):
        generate = {dataset: pipeline_task(settings, "generate", dataset) for dataset in DATASETS}
    for dataset, upstream in GENERATE_UPSTREAM.items():
        generate[dataset].set_upstream([generate[before] for before in upstream])

    with TaskGroup(VALIDATE_GROUP) as validate_group:
        validate = {dataset: pipeline_task(settings, "validate", dataset) for dataset in DATASETS}
    for dataset in DATASETS:
        generate[dataset] >> validate[dataset]

    # all_done: a rejected dataset fails its validate task, and the branch must still choose.
    check_validation = BranchPythonOperator(
        task_id="check_validation",
        python_callable=choose_publish_path,
        trigger_rule="all_done",
    )
    validation_passed = EmptyOperator(task_id=PASSED_GATE)
    validation_rejected = EmptyOperator(task_id=REJECTED_GATE)

    with TaskGroup("upload"):
        upload = {dataset: pipeline_task(settings, "upload", dataset) for dataset in DATASETS}
    with TaskGroup("load"):
        load = {dataset: pipeline_task(settings, "load", dataset) for dataset in DATASETS}
    transform = pipeline_task(settings, "transform")

    # all_done: the report matters most when a file was rejected or a task failed. It runs
    # once transform is done, skipped or upstream_failed, so after every validate task.
    report = pipeline_task(
        settings, REPORT_TASK, extra_links=(ReportLink(),), trigger_rule="all_done"
    )

    alert = PythonOperator(task_id="dq_alert", python_callable=dq_alert, trigger_rule="all_done")

    # end succeeds when the path the branch took did. A failed validate task (a rejected
    # file) makes it upstream_failed, so the run is marked failed though the branch coped.
    end = EmptyOperator(task_id="end", trigger_rule="none_failed_min_one_success")

    validate_group >> check_validation >> [validation_passed, validation_rejected]
    for dataset in DATASETS:
        validation_passed >> upload[dataset] >> load[dataset] >> transform
    transform >> report
    [report, validation_rejected, validate_group] >> end
    # After the report, so that the alert links the published page.
    [validate_group, report] >> alert >> end
