"""Which day a run processes, and when a run is late: the same on Airflow 3.x and 2.10.

A run processes one day's files, the day of its data interval. The schedule is
`CronDataIntervalTimetable` at midnight UTC on every version, so the run Airflow starts just
after midnight covers the day that just ended, and its logical date is that day's start (with
`@daily`, Airflow 3 would use `CronTriggerTimetable`, whose logical date is the tick itself).
A run triggered with a logical date processes that date's day. A run triggered without one
(allowed since Airflow 3: `airflow dags trigger` without `-l`, the REST API with
`logical_date: null`) processes the day before it was triggered, the last complete day, as the
next scheduled run would.
"""

from datetime import timedelta

from marketing_pipeline_tasks.compat import CronDataIntervalTimetable

DAILY_AT_MIDNIGHT_UTC = "0 0 * * *"


def timetable() -> CronDataIntervalTimetable:
    return CronDataIntervalTimetable(DAILY_AT_MIDNIGHT_UTC, timezone="UTC")


def processing_day(dag_run) -> str:
    """The day (YYYY-MM-DD) the run's tasks process: the `--ds` the binary gets."""
    logical_date = getattr(dag_run, "logical_date", None)
    if logical_date is not None:
        return logical_date.strftime("%Y-%m-%d")
    return (dag_run.run_after - timedelta(days=1)).strftime("%Y-%m-%d")


# Templates render it as `{{ processing_day(dag_run) }}` (DAG user_defined_macros).
MACROS = {"processing_day": processing_day}
DS_TEMPLATE = "{{ processing_day(dag_run) }}"


def context_day(context) -> str | None:
    """The processing day of the run a task context (or callback context) belongs to."""
    dag_run = context.get("dag_run")
    return processing_day(dag_run) if dag_run is not None else context.get("ds")
