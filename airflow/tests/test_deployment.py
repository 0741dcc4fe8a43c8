"""The container files, checked without a Docker engine (none runs here): docker-compose.yml
provides every service, port, volume, setting and credential the DAG and the binary need, its
long-running services restart and report their health, its images are pinned, and the Dockerfile
builds the binary exactly as the README and CI do (tests/image.rs checks the runtime image)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from airflow import __version__ as airflow_version

from marketing_pipeline_tasks.connections import credentials_env
from marketing_pipeline_tasks.interface import packaged_file

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
]
# Run once to completion, which the services after them wait for.
ONE_SHOT_SERVICES = ["minio-init", "airflow-init"]
LONG_RUNNING_SERVICES = [name for name in SERVICES if name not in ONE_SHOT_SERVICES]
# What the binary cannot run without when its areas are on MinIO (README "Settings"); the
# credentials come from Connections (test_credentials_are_connections_the_local_runner_reads).
BINARY_SETTINGS = [
    "PIPELINE_LANDING_URL",
    "PIPELINE_LAKE_URL",
    "PIPELINE_METADATA_URL",
    "PIPELINE_WAREHOUSE_URL",
]
# The S3 settings the binary needs for MinIO, from the aws_default Connection.
MINIO_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": SERVICES["minio"]["environment"]["MINIO_ROOT_USER"],
    "AWS_SECRET_ACCESS_KEY": SERVICES["minio"]["environment"]["MINIO_ROOT_PASSWORD"],
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://minio:9000",
}
IMAGE_AIRFLOW = re.search(r"FROM apache/airflow:([\d.]+)-", DOCKERFILE).group(1)


def compose_value(value: str) -> str:
    """`value` as Compose sets it when the shell sets none of the variables it names."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_every_service_of_the_stack_is_there():
    assert set(SERVICES) == {"postgres", "minio", "minio-init", *AIRFLOW_SERVICES}
    commands = {name: SERVICES[name].get("command") for name in AIRFLOW_SERVICES[1:]}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }


def test_ports_match_the_readme():
    assert SERVICES["airflow-apiserver"]["ports"] == ["8080:8080"]
    assert SERVICES["minio"]["ports"] == ["9000:9000", "9001:9001"]
    assert "--console-address :9001" in SERVICES["minio"]["command"]


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_get_the_dag_the_binary_and_its_settings(service):
    spec = SERVICES[service]
    assert spec["build"] == {"context": ".", "target": "airflow"}
    assert "./airflow/dags:/opt/airflow/dags:ro" in spec["volumes"]
    env = spec["environment"]
    missing = [name for name in BINARY_SETTINGS if not env.get(name)]
    assert missing == [], f"{service} lacks {missing}"
    assert env["PIPELINE_RUNNER"] == "local"
    assert env["PIPELINE_BINARY"] == "/usr/local/bin/marketing-pipeline"
    assert "COPY --from=build /src/target/release/marketing-pipeline /usr/local/bin/" in DOCKERFILE
    # Files the binary writes live on a volume every Airflow service shares.
    data_volume = next(v for v in spec["volumes"] if v.endswith(":/opt/airflow/data"))
    for name in ("PIPELINE_WAREHOUSE_URL", "PIPELINE_ALERT_LOG"):
        assert "/opt/airflow/data/" in env[name], name
    assert data_volume.split(":")[0] in COMPOSE["volumes"]


def test_the_binarys_interface_ships_inside_the_dags_folder():
    # The DAG reads interface.json when it is parsed: it travels with the dags folder that
    # Compose mounts (and that MWAA and Composer are given as is), inside the helper package.
    dags = REPO / "airflow" / "dags"
    interface_file = Path(str(packaged_file()))
    assert interface_file.is_file()
    assert interface_file.is_relative_to(dags)
    for service in AIRFLOW_SERVICES:
        assert "./airflow/dags:/opt/airflow/dags:ro" in SERVICES[service]["volumes"]
    ignored = (dags / ".airflowignore").read_text().split()
    assert interface_file.parent.name in ignored  # a package of the DAG's, not DAG files


def test_pipeline_metadata_has_its_own_postgres_database():
    url = SERVICES["airflow-scheduler"]["environment"]["PIPELINE_METADATA_URL"]
    database = re.fullmatch(r"postgres://\w+:\w+@postgres:5432/(\w+)", url).group(1)
    airflow = SERVICES["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert database != airflow.rsplit("/", 1)[1]
    mount = next(v for v in SERVICES["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    init_sql = (REPO / mount.split(":")[0]).read_text()
    assert f"CREATE DATABASE {database};" in init_sql


def test_minio_init_creates_the_buckets_the_urls_name():
    env = SERVICES["airflow-scheduler"]["environment"]
    buckets = {
        re.match(r"s3://([^/]+)", env[name]).group(1)
        for name in ("PIPELINE_LANDING_URL", "PIPELINE_LAKE_URL")
    }
    init = " ".join(SERVICES["minio-init"]["command"])
    for bucket in buckets:
        assert f"local/{bucket}" in init
    user, password = MINIO_AWS_ENV["AWS_ACCESS_KEY_ID"], MINIO_AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    assert f"mc alias set local {MINIO_AWS_ENV['AWS_ENDPOINT_URL']} {user} {password}" in init


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_credentials_are_connections_the_local_runner_reads(monkeypatch, service):
    env = SERVICES[service]["environment"]
    loose = [name for name in env if name.startswith(("AWS_", "SNOWFLAKE_"))]
    assert loose == [], f"{service}: credentials belong in AIRFLOW_CONN_* Connections"
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["conn_type"] == "aws"
    # Snowflake's comes from the shell whole; unset, it is empty, which Airflow takes as none.
    assert env["AIRFLOW_CONN_SNOWFLAKE_DEFAULT"] == "${AIRFLOW_CONN_SNOWFLAKE_DEFAULT:-}"
    for name, value in env.items():
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(name, compose_value(value))
    assert credentials_env() == MINIO_AWS_ENV


@pytest.mark.parametrize("service", LONG_RUNNING_SERVICES)
def test_long_running_services_restart_and_report_their_health(service):
    spec = SERVICES[service]
    assert spec["restart"] == "unless-stopped"
    assert spec["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


@pytest.mark.parametrize("service", ONE_SHOT_SERVICES)
def test_one_shot_services_are_not_restarted(service):
    # A restarted one would never complete, and what waits for it would never start.
    assert "restart" not in SERVICES[service]


@pytest.mark.skipif(
    airflow_version != IMAGE_AIRFLOW,
    reason=f"the image's Airflow is {IMAGE_AIRFLOW}, this is {airflow_version}",
)
def test_airflow_commands_and_healthchecks_are_this_airflows():
    from airflow.api_fastapi.core_api.routes.public import public_router
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    job_types = {}
    for service in AIRFLOW_SERVICES[1:]:
        parser.parse_args([SERVICES[service]["command"]])
        test = SERVICES[service]["healthcheck"]["test"]
        if test[1] == "airflow":
            arguments = parser.parse_args(test[2:])
            assert arguments.local, service  # this container's job, not any scheduler's
            job_types[service] = arguments.job_type
    assert job_types == {
        "airflow-scheduler": "SchedulerJob",
        "airflow-dag-processor": "DagProcessorJob",
        "airflow-triggerer": "TriggererJob",
    }
    health = SERVICES["airflow-apiserver"]["healthcheck"]["test"]
    assert health[:3] == ["CMD", "curl", "--fail"]
    port = SERVICES["airflow-apiserver"]["ports"][0].split(":")[1]
    url = re.fullmatch(rf"http://localhost:{port}(/\S+)", health[3])
    assert url, health
    assert url.group(1) in {route.path for route in public_router.routes}


def test_images_are_pinned():
    images = [spec["image"] for spec in SERVICES.values() if "build" not in spec]
    images += re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    for image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag not in ("", "latest"), image


def test_airflow_logs_are_on_a_volume():
    mounts = {
        next(v for v in SERVICES[service]["volumes"] if v.endswith(":/opt/airflow/logs"))
        for service in AIRFLOW_SERVICES
    }
    assert len(mounts) == 1, mounts  # one volume, so every service's logs are in one place
    volume, _, path = mounts.pop().partition(":")
    assert volume in COMPOSE["volumes"]
    # Owned by Airflow's user, as the image's own logs folder is.
    init = SERVICES["airflow-init"]["command"][0]
    assert re.search(rf"chown -R 50000:0 [^&]*{path}", init), init


def test_start_order_waits_for_health_and_setup():
    assert SERVICES["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    for service in AIRFLOW_SERVICES[1:]:
        depends = SERVICES[service]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["minio-init"] == {"condition": "service_completed_successfully"}
    scheduler = SERVICES["airflow-scheduler"]["depends_on"]
    assert scheduler["airflow-apiserver"] == {"condition": "service_healthy"}
    database = SERVICES["airflow-scheduler"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@postgres:5432/" in database


def test_the_image_builds_the_binary_as_ci_does_and_runs_unprivileged():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    build = re.search(r"RUN (cargo build [^\n\\&]+)", DOCKERFILE).group(1).strip()
    assert build == "cargo build --release --locked"
    assert build in readme
    assert "--locked" in ci  # CI tests the same lockfile
    for stage in ("AS build", "AS airflow", "AS runtime"):
        assert stage in DOCKERFILE
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert "USER 65532:65532" in runtime  # distroless's nonroot, numeric for runAsNonRoot
    assert 'ENTRYPOINT ["/usr/local/bin/marketing-pipeline"]' in runtime
    # Every path the binary writes by default is under the work dir.
    for url in re.findall(r"PIPELINE_\w+_URL=(\S+)", runtime):
        assert "/work/data/" in url, url
