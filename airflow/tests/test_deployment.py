"""The container files, checked without a Docker engine (none runs here): docker-compose.yml
provides every service, port, volume and setting the DAG and the binary need, and the Dockerfile
builds the binary exactly as the README and CI do."""

import re
from pathlib import Path

import pytest
import yaml

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
# What the binary cannot run without when its areas are on MinIO (README "Settings").
BINARY_SETTINGS = [
    "PIPELINE_LANDING_URL",
    "PIPELINE_LAKE_URL",
    "PIPELINE_METADATA_URL",
    "PIPELINE_WAREHOUSE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
]


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
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_start_order_waits_for_health_and_setup():
    for name in ("postgres", "minio", "airflow-apiserver"):
        assert "healthcheck" in SERVICES[name], name
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
    assert "USER nonroot" in runtime
    assert 'ENTRYPOINT ["/usr/local/bin/marketing-pipeline"]' in runtime
    # Every path the binary writes by default is under the work dir.
    for url in re.findall(r"PIPELINE_\w+_URL=(\S+)", runtime):
        assert "/work/data/" in url, url
