"""The binary's interface: its tasks, statuses, exit codes and datasets, read from interface.json.

interface.json, next to this module, is the output of `marketing-pipeline describe`, committed
(a Rust test fails when the binary and the committed copy disagree). It is read once, when the
DAG is parsed, and checked here, so that a malformed file is an import error that names it.
It ships inside this package, so it travels with the dags folder wherever that is copied
(Docker Compose's mount, MWAA's S3 prefix, Composer's bucket), zipped or not.

Unknown keys are ignored: the binary may describe more than the DAG uses.
"""

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

INTERFACE_FILE = "interface.json"
REGENERATE = f"marketing-pipeline describe > airflow/dags/marketing_pipeline_tasks/{INTERFACE_FILE}"

# What Airflow does with an exit code (an ExitCode's `airflow`).
SUCCESS = "success"
"""The task succeeds; the metrics JSON is its XCom."""
SKIP = "skip"
"""AirflowSkipException: the task is skipped."""
FAIL = "fail"
"""AirflowFailException: the task fails without retry."""
RETRY = "retry"
"""AirflowException: the task fails and is retried."""
AIRFLOW_OUTCOMES = (SUCCESS, SKIP, FAIL, RETRY)

DIMENSION = "dimension"
FACT = "fact"
DATASET_KINDS = (DIMENSION, FACT)


class InterfaceError(ValueError):
    """interface.json is unreadable, malformed, or lacks what the DAG needs; names the file."""


@dataclass(frozen=True)
class Task:
    """A subcommand of the binary that is a task (prints metrics)."""

    name: str
    per_dataset: bool
    """True: `<name> <dataset> --ds DS`, one task per dataset; False: `<name> --ds DS`."""
    statuses: tuple[str, ...]
    """The `status` values of its metrics when it succeeds (see Interface.failure_statuses)."""


@dataclass(frozen=True)
class ExitCode:
    code: int
    name: str
    airflow: str
    """One of AIRFLOW_OUTCOMES: success, skip, fail (no retry) or retry."""
    meaning: str


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str
    """`dimension` or `fact` (DATASET_KINDS)."""
    format: str
    """The raw file's format: csv, jsonl, parquet."""
    key: str
    references: tuple[str, ...]
    """Datasets this one's foreign keys point at (same ds)."""


@dataclass(frozen=True)
class Interface:
    binary: str
    version: str
    tasks: tuple[Task, ...]
    failure_statuses: tuple[str, ...]
    """Statuses any task reports when it failed or skipped."""
    exit_codes: tuple[ExitCode, ...]
    datasets: tuple[Dataset, ...]
    source: str = field(default="<interface>", compare=False)
    """Where it was read from, for error messages."""

    @property
    def dimensions(self) -> tuple[Dataset, ...]:
        return tuple(d for d in self.datasets if d.kind == DIMENSION)

    @property
    def facts(self) -> tuple[Dataset, ...]:
        return tuple(d for d in self.datasets if d.kind == FACT)

    def task(self, name: str) -> Task:
        """The task called `name`; InterfaceError when the binary has none."""
        return self._lookup(self.tasks, name, "task")

    def exit_code(self, name: str) -> ExitCode:
        """The exit code called `name` (e.g. `config`); InterfaceError when there is none."""
        return self._lookup(self.exit_codes, name, "exit code")

    def dataset(self, name: str) -> Dataset:
        """The dataset called `name`; InterfaceError when there is none."""
        return self._lookup(self.datasets, name, "dataset")

    def status(self, task: str, status: str) -> str:
        """`status`, once checked to be one the task reports; InterfaceError otherwise."""
        statuses = self.task(task).statuses
        if status not in statuses:
            raise InterfaceError(
                f"{self.source}: task {task!r} has no status {status!r}"
                f" (it reports {', '.join(statuses)})"
            )
        return status

    def generate_upstream(self) -> dict[str, tuple[str, ...]]:
        """Each dataset -> the datasets whose generate task must finish before its own.

        Dimensions come first, in parallel; a fact follows the facts it references, or
        every dimension when it references no fact. References are acyclic (checked on load).
        """
        dimensions = tuple(d.name for d in self.dimensions)
        upstream = {}
        for dataset in self.datasets:
            if dataset.kind == DIMENSION:
                upstream[dataset.name] = ()
            else:
                facts = tuple(r for r in dataset.references if self.dataset(r).kind == FACT)
                upstream[dataset.name] = facts or dimensions
        return upstream

    def _lookup(self, items, name: str, what: str):
        for item in items:
            if item.name == name:
                return item
        known = ", ".join(item.name for item in items)
        raise InterfaceError(f"{self.source}: no {what} {name!r} (there are: {known})")


def packaged_file():
    """interface.json inside this package (a Path, or a zipfile.Path in a zipped dags folder)."""
    return resources.files(__package__) / INTERFACE_FILE


@functools.cache
def interface() -> Interface:
    """The committed interface.json, read and checked once per process."""
    return load()


def load(path=None) -> Interface:
    """Read and check an interface file (by default the committed one) into an Interface."""
    file = packaged_file() if path is None else path
    if isinstance(file, (str, os.PathLike)):
        file = Path(file)
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise InterfaceError(
            f"{file}: cannot read the binary's interface ({error}); regenerate it: {REGENERATE}"
        ) from error
    try:
        data = json.loads(raw)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InterfaceError(
            f"{file}: not valid JSON ({error}); regenerate it: {REGENERATE}"
        ) from error
    return parse(data, str(file))


def parse(data: Any, source: str = "<interface>") -> Interface:
    """Check the shape of a decoded interface.json; InterfaceError names `source` and the field."""
    read = _Reader(source)
    top = read.object(data, "")
    tasks = tuple(
        Task(
            name=read.name(task, "name", where),
            per_dataset=read.value(task, "per_dataset", where, bool),
            statuses=read.strings(task, "statuses", where, nonempty=True),
        )
        for task, where in read.objects(top, "tasks")
    )
    exit_codes = tuple(
        ExitCode(
            code=read.exit_code(code, where),
            name=read.name(code, "name", where),
            airflow=read.choice(code, "airflow", where, AIRFLOW_OUTCOMES),
            meaning=read.name(code, "meaning", where),
        )
        for code, where in read.objects(top, "exit_codes")
    )
    datasets = tuple(
        Dataset(
            name=read.name(dataset, "name", where),
            kind=read.choice(dataset, "kind", where, DATASET_KINDS),
            format=read.name(dataset, "format", where),
            key=read.name(dataset, "key", where),
            references=read.strings(dataset, "references", where),
        )
        for dataset, where in read.objects(top, "datasets")
    )
    read.unique("tasks", [t.name for t in tasks])
    read.unique("exit_codes", [c.code for c in exit_codes])
    read.unique("exit_codes", [c.name for c in exit_codes])
    read.unique("datasets", [d.name for d in datasets])
    _check_references(read, datasets)
    return Interface(
        binary=read.name(top, "binary", ""),
        version=read.name(top, "version", ""),
        tasks=tasks,
        failure_statuses=read.strings(top, "failure_statuses", ""),
        exit_codes=exit_codes,
        datasets=datasets,
        source=source,
    )


def _check_references(read: "_Reader", datasets: tuple[Dataset, ...]) -> None:
    """References name known datasets; dimensions reference none; facts form no cycle."""
    kinds = {d.name: d.kind for d in datasets}
    for index, dataset in enumerate(datasets):
        where = f"datasets[{index}].references"
        for reference in dataset.references:
            if reference not in kinds:
                raise read.error(
                    where, f"{dataset.name!r} references unknown dataset {reference!r}"
                )
            if reference == dataset.name:
                raise read.error(where, f"{dataset.name!r} references itself")
        if dataset.kind == DIMENSION and dataset.references:
            raise read.error(
                where,
                f"dimension {dataset.name!r} references {', '.join(dataset.references)}:"
                " dimensions are generated first, independently of any other dataset",
            )
    fact_references = {
        d.name: [r for r in d.references if kinds[r] == FACT] for d in datasets if d.kind == FACT
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = " -> ".join((*path[path.index(name) :], name))
            raise read.error("datasets", f"facts reference each other in a cycle: {cycle}")
        if name not in done:
            for reference in fact_references[name]:
                visit(reference, (*path, name))
            done.add(name)

    for name in fact_references:
        visit(name, ())


class _Reader:
    """Typed access to decoded JSON; every error names the file and the field's path."""

    def __init__(self, source: str):
        self.source = source

    def error(self, where: str, message: str) -> InterfaceError:
        location = f"{self.source}: {where}" if where else self.source
        return InterfaceError(f"{location}: {message} (expected the output of {REGENERATE})")

    def object(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.error(where, f"expected a JSON object, got {_json_type(value)}")
        return value

    def value(self, obj: dict, key: str, where: str, kind: type) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in obj:
            raise self.error(where, f"missing {key!r}")
        value = obj[key]
        # bool is an int in Python, and an int is no bool in JSON.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = {str: "a string", bool: "true or false", int: "an integer", list: "a list"}
            raise self.error(path, f"expected {expected[kind]}, got {_json_type(value)}")
        return value

    def name(self, obj: dict, key: str, where: str) -> str:
        value = self.value(obj, key, where, str)
        if not value.strip():
            raise self.error(f"{where}.{key}" if where else key, "must not be empty")
        return value

    def choice(self, obj: dict, key: str, where: str, choices: tuple[str, ...]) -> str:
        value = self.value(obj, key, where, str)
        if value not in choices:
            raise self.error(
                f"{where}.{key}", f"must be one of {', '.join(choices)}, not {value!r}"
            )
        return value

    def exit_code(self, obj: dict, where: str) -> int:
        code = self.value(obj, "code", where, int)
        if not 0 <= code <= 255:
            raise self.error(f"{where}.code", f"an exit code is 0 to 255, not {code}")
        return code

    def strings(self, obj: dict, key: str, where: str, nonempty: bool = False) -> tuple[str, ...]:
        path = f"{where}.{key}" if where else key
        values = self.value(obj, key, where, list)
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value.strip():
                raise self.error(
                    f"{path}[{index}]", f"expected a non-empty string, got {_json_type(value)}"
                )
        if nonempty and not values:
            raise self.error(path, "must not be empty")
        self.unique(path, values)
        return tuple(values)

    def objects(self, obj: dict, key: str) -> list[tuple[dict, str]]:
        """The objects of a non-empty list, each with its path (`tasks[2]`)."""
        values = self.value(obj, key, "", list)
        if not values:
            raise self.error(key, "must not be empty")
        return [
            (self.object(value, f"{key}[{index}]"), f"{key}[{index}]")
            for index, value in enumerate(values)
        ]

    def unique(self, where: str, values: list) -> None:
        seen = set()
        for value in values:
            if value in seen:
                raise self.error(where, f"{value!r} appears twice")
            seen.add(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    return "an object"


def describe_md(iface: Interface) -> str:
    """Markdown of the exit codes and datasets, for the DAG's doc_md."""
    outcomes = {
        SUCCESS: "success (the metrics JSON is the XCom)",
        SKIP: "skipped",
        FAIL: "failed, no retry",
        RETRY: "failed, retried",
    }
    upstream = iface.generate_upstream()
    lines = [
        f"**Exit codes** of `{iface.binary}` {iface.version} (from `{INTERFACE_FILE}`;"
        " any other code, such as a signal, fails and is retried):",
        "",
        "| code | task | meaning |",
        "|---|---|---|",
        *(f"| {c.code} | {outcomes[c.airflow]} | {c.meaning} |" for c in iface.exit_codes),
        "",
        "**Datasets** (each is generated once those in its last column are):",
        "",
        "| dataset | kind | raw format | key | generated after |",
        "|---|---|---|---|---|",
        *(
            f"| {d.name} | {d.kind} | {d.format} | {d.key} | {', '.join(upstream[d.name]) or '-'} |"
            for d in iface.datasets
        ),
    ]
    return "\n".join(lines) + "\n"
