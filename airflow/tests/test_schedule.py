"""Which day a run processes, from Airflow's own timetable: the same on Airflow 3.x and 2.10
(`.ci/run` runs this file on both), for scheduled runs, runs triggered with a logical date and,
on Airflow 3, runs triggered without one."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from marketing_pipeline_tasks.schedule import DS_TEMPLATE, processing_day

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def core_timetable(dag):
    """The timetable the scheduler runs (Airflow 3 turns the DAG's SDK one into it)."""
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 2.x: the DAG's timetable is the scheduler's
        return dag.timetable
    return coerce_to_core_timetable(dag.timetable)


def scheduled_run_after(dag, previous_day: datetime):
    """The next scheduled run after the one whose data interval started on `previous_day`."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    last = DataInterval(start=previous_day, end=previous_day.replace(day=previous_day.day + 1))
    restriction = TimeRestriction(earliest=START, latest=None, catchup=True)
    return core_timetable(dag).next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction
    )


def rendered_ds(dag, dag_run) -> str:
    """The `--ds` the binary gets: the tasks' template, rendered by the DAG's Jinja env."""
    return dag.get_template_env().from_string(DS_TEMPLATE).render(dag_run=dag_run)


def test_the_run_after_midnight_processes_the_day_that_ended(local_dag):
    run = scheduled_run_after(local_dag, datetime(2025, 5, 24, tzinfo=timezone.utc))
    assert run.run_after == datetime(2025, 5, 26, tzinfo=timezone.utc)  # the tick
    assert run.data_interval.start == datetime(2025, 5, 25, tzinfo=timezone.utc)
    assert run.logical_date == run.data_interval.start
    dag_run = SimpleNamespace(logical_date=run.logical_date, run_after=run.run_after)
    assert rendered_ds(local_dag, dag_run) == "2025-05-25"


def test_a_run_triggered_with_a_logical_date_processes_that_date(local_dag):
    dag_run = SimpleNamespace(
        logical_date=datetime(2025, 5, 25, 14, 30, tzinfo=timezone.utc),
        run_after=datetime(2025, 6, 1, 9, tzinfo=timezone.utc),
    )
    assert rendered_ds(local_dag, dag_run) == "2025-05-25"


@pytest.mark.parametrize(
    "run_after, day",
    [
        (datetime(2025, 5, 26, 0, 0, 5, tzinfo=timezone.utc), "2025-05-25"),
        (datetime(2025, 5, 26, 23, 59, tzinfo=timezone.utc), "2025-05-25"),
        (datetime(2025, 3, 1, 8, tzinfo=timezone.utc), "2025-02-28"),
    ],
)
def test_a_run_triggered_without_a_logical_date_processes_the_last_complete_day(
    local_dag, run_after, day
):
    dag_run = SimpleNamespace(logical_date=None, run_after=run_after)
    assert rendered_ds(local_dag, dag_run) == day
    assert processing_day(dag_run) == day
