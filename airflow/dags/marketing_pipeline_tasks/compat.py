"""Airflow imports and differences between 3.x (the Task SDK) and 2.10/2.11."""

from airflow import __version__ as airflow_version
from packaging.version import Version

try:
    from airflow.sdk import DAG, BaseHook, BaseOperator, BaseOperatorLink, Param, TaskGroup
    from airflow.sdk.execution_time.xcom import XCom
except ImportError:  # Airflow 2.10 / 2.11
    from airflow.hooks.base import BaseHook
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.baseoperatorlink import BaseOperatorLink
    from airflow.models.dag import DAG
    from airflow.models.param import Param
    from airflow.models.xcom import XCom
    from airflow.utils.task_group import TaskGroup

try:
    from airflow.sdk import Asset, CronDataIntervalTimetable
except ImportError:  # Airflow 2.10 / 2.11: Assets were Datasets
    from airflow.datasets import Dataset as Asset
    from airflow.timetables.interval import CronDataIntervalTimetable

try:  # Airflow 3.1+
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference
except ImportError:
    AsyncCallback = DeadlineAlert = DeadlineReference = None

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 2.x, and 3.x before the exceptions moved to the SDK
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )

# retry_exponential_backoff is a multiplier since Airflow 3.2 (where True means x1: no
# backoff) and a flag before it (where a float fails the type check).
EXPONENTIAL_BACKOFF = 2.0 if Version(airflow_version).release >= (3, 2) else True

__all__ = [
    "DAG",
    "Asset",
    "AsyncCallback",
    "CronDataIntervalTimetable",
    "DeadlineAlert",
    "DeadlineReference",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "EXPONENTIAL_BACKOFF",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "Param",
    "TaskGroup",
    "XCom",
]
