"""A downstream DAG as a data team would write one: it runs whenever the marketing pipeline
has refreshed the marts (the `marketing_pipeline.marts` Asset), and reads the transform
task's metrics from the triggering event's `extra`. test_end_to_end checks that a pipeline run
triggers it."""

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset


def report_refresh(triggering_asset_events, **_):
    [event] = triggering_asset_events[Asset.ref(name="marketing_pipeline.marts")]
    return event.extra


with DAG(
    dag_id="marts_consumer",
    schedule=[Asset.ref(name="marketing_pipeline.marts")],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
):
    PythonOperator(task_id="report_refresh", python_callable=report_refresh)
