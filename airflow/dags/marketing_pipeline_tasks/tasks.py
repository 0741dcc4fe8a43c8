"""One task factory for every pipeline task, whichever runner the settings choose."""

from marketing_pipeline_tasks.interface import InterfaceError, interface
from marketing_pipeline_tasks.lineage import outlets
from marketing_pipeline_tasks.local_runner import PipelineBinaryOperator
from marketing_pipeline_tasks.schedule import DS_TEMPLATE
from marketing_pipeline_tasks.settings import POD_RUNNERS, Settings

# The DAG params, passed to the binary as its settings (README "Settings").
PARAM_ENV = {
    "SCALE_FACTOR": "{{ params.scale_factor }}",
    "PIPELINE_DEFECT_RATE": "{{ params.defect_rate }}",
}


def pipeline_task(
    settings: Settings,
    command: str,
    dataset: str | None = None,
    *,
    extra_links: tuple = (),
    **task_args,
):
    """A task running `marketing-pipeline COMMAND [DATASET] --ds DAY` (schedule.processing_day).

    Its task id is the dataset (inside the command's TaskGroup) or the command. The
    command and dataset are checked against the binary's interface when the DAG is parsed:
    a per-dataset task needs a dataset, any other task none. `extra_links` (BaseOperatorLink
    instances) are added to the operator's own; `task_args` (e.g. trigger_rule) go to the
    operator, whichever runner builds it.
    """
    task = interface().task(command)
    if task.per_dataset != (dataset is not None):
        needs = "one task per dataset" if task.per_dataset else "no dataset"
        raise InterfaceError(
            f"{interface().source}: task {command!r} takes {needs}, the DAG gives it {dataset!r}"
        )
    if dataset is not None:
        interface().dataset(dataset)
    subject = [command, dataset] if dataset else [command]
    arguments = [*subject, "--ds", DS_TEMPLATE]
    task_id = dataset or command
    task_args.setdefault("outlets", outlets(command, dataset))
    if settings.runner in POD_RUNNERS:
        # Imported only here: the kubernetes client is heavy and the local runner needs none of it.
        from marketing_pipeline_tasks.pod_runner import pod_operator

        pod_name = "-".join(["marketing-pipeline", *subject]).replace("_", "-")
        operator = pod_operator(
            settings, task_id, pod_name, arguments, dict(PARAM_ENV), **task_args
        )
    else:
        operator = PipelineBinaryOperator(
            task_id=task_id,
            binary=settings.binary,
            arguments=arguments,
            env=dict(PARAM_ENV),
            **task_args,
        )
    if extra_links:
        # Per task, not per class: both runners' classes run every task, this link suits one.
        operator.operator_extra_links = (*operator.operator_extra_links, *extra_links)
    return operator
