# syntax=docker/dockerfile:1
# One small image with the marketing-pipeline binary as its entrypoint; every
# Airflow task is `marketing-pipeline <task> ...` in a pod of this image.
#
#   docker build -t marketing-pipeline .
#   docker run --rm --read-only --tmpfs /tmp -v "$PWD/data:/work/data" marketing-pipeline run --ds 2025-05-25

# Build: the same release build as `cargo build --release --locked` (README).
FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY sql ./sql
RUN cargo build --release --locked \
    && strip target/release/marketing-pipeline

# Airflow for docker-compose.yml (`target: airflow`): the official image with
# the binary added and the DAG's providers installed from the constraints.
FROM apache/airflow:3.3.2-python3.11 AS airflow
COPY airflow/requirements.txt airflow/constraints.txt /tmp/airflow/
RUN pip install --no-cache-dir -r /tmp/airflow/requirements.txt -c /tmp/airflow/constraints.txt
COPY --from=build /src/target/release/marketing-pipeline /usr/local/bin/marketing-pipeline

# Runtime, the default target: glibc, libstdc++ (DuckDB is C++), CA
# certificates and a non-root user; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /src/target/release/marketing-pipeline /usr/local/bin/marketing-pipeline
# The only writable places are a mounted work dir and /tmp, so the image runs
# with a read-only root filesystem. Defaults keep the embedded setup in /work/data.
WORKDIR /work
ENV PIPELINE_LANDING_URL=file:///work/data/landing \
    PIPELINE_LAKE_URL=file:///work/data/lake \
    PIPELINE_METADATA_URL=sqlite:///work/data/metadata.db \
    PIPELINE_WAREHOUSE_URL=duckdb:///work/data/warehouse.duckdb \
    TMPDIR=/tmp
# distroless's nonroot, by number: Kubernetes' runAsNonRoot can verify only a numeric user.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/marketing-pipeline"]
CMD ["--help"]
