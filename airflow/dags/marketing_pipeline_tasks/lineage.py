"""What a task produced, told to Airflow: Asset events (with the task's metrics in `extra`)
and OpenLineage inputs and outputs (named by the binary, in its metrics' `lineage`).

Assets, for downstream DAGs to schedule on (`schedule=[MARTS]`, or `Asset.ref(name=...)`):
- `marketing_pipeline.lake.<dataset>`: upload published the dataset's slices to the lake;
- `marketing_pipeline.raw.<dataset>`: load replaced the ds's partition of its RAW table;
- `marketing_pipeline.marts`: transform built the staging and mart models.
"""

from marketing_pipeline_tasks.compat import Asset

ASSET_URI = "marketing-pipeline://{path}"
# The metrics fields an asset event carries in its `extra`.
EVENT_FIELDS = (
    "task",
    "dataset",
    "ds",
    "status",
    "rows_in",
    "rows_out",
    "invalid_rows",
    "has_failure_delta",
    "outputs",
    "duration_ms",
)


def _asset(name: str, path: str) -> Asset:
    uri = ASSET_URI.format(path=path)
    try:
        return Asset(name=name, uri=uri)
    except TypeError:  # Airflow 2.10's Dataset has a URI only
        return Asset(uri)


def lake_asset(dataset: str) -> Asset:
    return _asset(f"marketing_pipeline.lake.{dataset}", f"lake/{dataset}")


def raw_asset(dataset: str) -> Asset:
    return _asset(f"marketing_pipeline.raw.{dataset}", f"warehouse/raw/{dataset}")


MARTS = _asset("marketing_pipeline.marts", "warehouse/marts")


def outlets(command: str, dataset: str | None) -> list[Asset]:
    """The Assets a task updates when it succeeds."""
    if command == "upload":
        return [lake_asset(dataset)]
    if command == "load":
        return [raw_asset(dataset)]
    if command == "transform":
        return [MARTS]
    return []


class PipelineTaskOutcome:
    """Mixed into both runners' operators: once the binary succeeded, its metrics become the
    outlets' event `extra` and the OpenLineage inputs and outputs of the task."""

    metrics: dict | None = None

    def record_outcome(self, context, metrics: dict) -> None:
        self.metrics = metrics
        extra = {name: metrics[name] for name in EVENT_FIELDS if name in metrics}
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = extra

    def get_openlineage_facets_on_complete(self, task_instance):
        """The OpenLineage provider calls this when the task succeeds."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        # The metrics this operator saw, else its XCom (Airflow 2 may call a copy of the task).
        metrics = self.metrics or task_instance.xcom_pull(task_ids=self.task_id) or {}
        lineage = metrics.get("lineage", {})

        def datasets(kind: str) -> list:
            return [
                Dataset(namespace=d["namespace"], name=d["name"]) for d in lineage.get(kind, [])
            ]

        return OperatorLineage(inputs=datasets("inputs"), outputs=datasets("outputs"))
