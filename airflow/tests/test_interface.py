"""The binary's interface (interface.json): the committed file, the loader's checks, lookups."""

import copy
import json
import subprocess
import sys
import zipfile

import pytest

from marketing_pipeline_tasks.interface import (
    INTERFACE_FILE,
    Interface,
    InterfaceError,
    interface,
    load,
    packaged_file,
    parse,
)
from support import DAGS_FOLDER

PACKAGE = DAGS_FOLDER / "marketing_pipeline_tasks"
COMMITTED = PACKAGE / INTERFACE_FILE

# A small interface of made-up datasets: the loader's checks and the generate order do not
# depend on the real ones.
EXAMPLE = {
    "binary": "example-pipeline",
    "version": "1.0.0",
    "tasks": [
        {"name": "extract", "per_dataset": True, "statuses": ["extracted"]},
        {"name": "publish", "per_dataset": False, "statuses": ["published", "unchanged"]},
    ],
    "failure_statuses": ["failed"],
    "exit_codes": [
        {"code": 0, "name": "success", "airflow": "success", "meaning": "done"},
        {"code": 1, "name": "bug", "airflow": "retry", "meaning": "a bug"},
        {"code": 65, "name": "data_rejected", "airflow": "fail", "meaning": "bad data"},
        {"code": 99, "name": "nothing_to_do", "airflow": "skip", "meaning": "nothing to do"},
    ],
    "datasets": [
        {"name": "regions", "kind": "dimension", "format": "csv", "key": "id", "references": []},
        {"name": "channels", "kind": "dimension", "format": "csv", "key": "id", "references": []},
        {"name": "customers", "kind": "fact", "format": "csv", "key": "id", "references": []},
        {
            "name": "orders",
            "kind": "fact",
            "format": "jsonl",
            "key": "order_id",
            "references": ["customers", "regions"],
        },
        {
            "name": "refunds",
            "kind": "fact",
            "format": "parquet",
            "key": "refund_id",
            "references": ["channels", "orders"],
        },
        {
            "name": "ad_spend",
            "kind": "fact",
            "format": "csv",
            "key": "spend_id",
            "references": ["channels"],
        },
    ],
}


def test_the_committed_interface_is_read_once_from_the_package():
    assert interface() is interface()
    assert str(packaged_file()) == str(COMMITTED)
    assert interface() == load(COMMITTED)
    assert interface().source == str(COMMITTED)


def test_the_committed_interface_is_the_binarys_json_as_is():
    data = json.loads(COMMITTED.read_text())
    loaded = interface()
    assert loaded.binary == data["binary"]
    assert [task.name for task in loaded.tasks] == [task["name"] for task in data["tasks"]]
    assert [code.code for code in loaded.exit_codes] == [c["code"] for c in data["exit_codes"]]
    assert [d.name for d in loaded.datasets] == [d["name"] for d in data["datasets"]]


def test_parse_gives_typed_views():
    example = parse(copy.deepcopy(EXAMPLE), "example.json")
    assert isinstance(example, Interface)
    assert example.task("publish").per_dataset is False
    assert example.task("publish").statuses == ("published", "unchanged")
    assert example.exit_code("data_rejected").code == 65
    assert example.exit_code("nothing_to_do").airflow == "skip"
    assert example.dataset("orders").references == ("customers", "regions")
    assert [d.name for d in example.dimensions] == ["regions", "channels"]
    assert [d.name for d in example.facts] == ["customers", "orders", "refunds", "ad_spend"]
    assert example.failure_statuses == ("failed",)
    assert example.status("publish", "unchanged") == "unchanged"


def test_generate_order_dimensions_first_then_facts_after_the_facts_they_reference():
    example = parse(copy.deepcopy(EXAMPLE), "example.json")
    assert example.generate_upstream() == {
        "regions": (),
        "channels": (),
        # No fact referenced: after every dimension.
        "customers": ("regions", "channels"),
        "orders": ("customers",),
        "refunds": ("orders",),
        "ad_spend": ("regions", "channels"),
    }


def test_lookups_of_what_the_binary_lacks_name_the_file_and_what_there_is():
    example = parse(copy.deepcopy(EXAMPLE), "/dags/example.json")
    with pytest.raises(InterfaceError, match=r"/dags/example.json: no task 'load' \(there are: "):
        example.task("load")
    with pytest.raises(InterfaceError, match="no exit code 'config'"):
        example.exit_code("config")
    with pytest.raises(InterfaceError, match="no dataset 'pages'.*regions, channels"):
        example.dataset("pages")
    with pytest.raises(InterfaceError, match="task 'publish' has no status 'done'"):
        example.status("publish", "done")


def _set(path, value):
    """A change to a copy of EXAMPLE: set the value at a path of keys and indices."""

    def change(data):
        *parents, last = path
        parent = data
        for key in parents:
            parent = parent[key]
        parent[last] = value
        return data

    return change


def _delete(path):
    """A change to a copy of EXAMPLE: delete the key at a path of keys and indices."""

    def change(data):
        *parents, last = path
        parent = data
        for key in parents:
            parent = parent[key]
        del parent[last]
        return data

    return change


MALFORMED = {
    "a list at the top": (lambda data: [data], "expected a JSON object, got a list"),
    "no datasets": (_delete(["datasets"]), "missing 'datasets'"),
    "tasks not a list": (_set(["tasks"], {}), "tasks: expected a list, got an object"),
    "no tasks": (_set(["tasks"], []), "tasks: must not be empty"),
    "a task not an object": (_set(["tasks", 1], "publish"), "tasks[1]: expected a JSON object"),
    "per_dataset not a boolean": (
        _set(["tasks", 1, "per_dataset"], "no"),
        "tasks[1].per_dataset: expected true or false, got a string ('no')",
    ),
    "a task without statuses": (
        _set(["tasks", 0, "statuses"], []),
        "tasks[0].statuses: must not be empty",
    ),
    "a status not a string": (
        _set(["tasks", 0, "statuses"], ["extracted", 3]),
        "tasks[0].statuses[1]: expected a non-empty string, got a number (3)",
    ),
    "two tasks of one name": (_set(["tasks", 1, "name"], "extract"), "tasks: 'extract' appears"),
    "an unknown airflow outcome": (
        _set(["exit_codes", 1, "airflow"], "retry_later"),
        "exit_codes[1].airflow: must be one of success, skip, fail, retry, not 'retry_later'",
    ),
    "an exit code as a boolean": (
        _set(["exit_codes", 0, "code"], False),
        "exit_codes[0].code: expected an integer, got a boolean",
    ),
    "an exit code as a string": (
        _set(["exit_codes", 0, "code"], "0"),
        "exit_codes[0].code: expected an integer, got a string ('0')",
    ),
    "an exit code out of range": (
        _set(["exit_codes", 2, "code"], 300),
        "exit_codes[2].code: an exit code is 0 to 255, not 300",
    ),
    "one exit code twice": (_set(["exit_codes", 2, "code"], 1), "exit_codes: 1 appears twice"),
    "an empty meaning": (
        _set(["exit_codes", 3, "meaning"], " "),
        "exit_codes[3].meaning: must not be empty",
    ),
    "an unknown dataset kind": (
        _set(["datasets", 0, "kind"], "lookup"),
        "datasets[0].kind: must be one of dimension, fact, not 'lookup'",
    ),
    "a dataset without a key": (_delete(["datasets", 3, "key"]), "datasets[3]: missing 'key'"),
    "a reference to an unknown dataset": (
        _set(["datasets", 3, "references"], ["customers", "stores"]),
        "datasets[3].references: 'orders' references unknown dataset 'stores'",
    ),
    "a dataset referencing itself": (
        _set(["datasets", 3, "references"], ["orders"]),
        "'orders' references itself",
    ),
    "a dimension with references": (
        _set(["datasets", 1, "references"], ["regions"]),
        "datasets[1].references: dimension 'channels' references regions",
    ),
    "facts referencing each other": (
        _set(["datasets", 2, "references"], ["refunds"]),
        "cycle: customers -> refunds -> orders -> customers",
    ),
}


@pytest.mark.parametrize("change, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_interface_is_an_error_naming_the_file_and_the_field(tmp_path, change, message):
    data = change(copy.deepcopy(EXAMPLE))
    parse(copy.deepcopy(EXAMPLE))  # only the change makes it malformed
    path = tmp_path / INTERFACE_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(InterfaceError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)
    assert "marketing-pipeline describe" in str(raised.value)  # how to fix it


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"binary": "marketing-pipeline",', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_an_unparsable_interface_is_an_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / INTERFACE_FILE
    path.write_bytes(content)
    with pytest.raises(InterfaceError, match=f"^{path}: {message}"):
        load(path)


def test_a_missing_interface_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / INTERFACE_FILE
    with pytest.raises(InterfaceError, match=f"^{path}: cannot read the binary's interface"):
        load(path)


def test_the_interface_loads_from_a_zipped_dags_folder(tmp_path):
    # Airflow also imports DAGs from zip files; the file is read as a package resource.
    archive = tmp_path / "dags.zip"
    with zipfile.ZipFile(archive, "w") as dags_zip:
        for name in ("__init__.py", "interface.py", INTERFACE_FILE):
            dags_zip.write(PACKAGE / name, f"marketing_pipeline_tasks/{name}")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from marketing_pipeline_tasks.interface import interface\n"
        "print(interface().source, len(interface().datasets))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(archive)],
        capture_output=True,
        text=True,
        check=True,
    )
    source, datasets = result.stdout.split()
    assert source.startswith(str(archive))
    assert int(datasets) == len(interface().datasets)
