#!/usr/bin/env bash
# Clustering benchmark on DuckDB (release build): sql/bench/clustering.sql
# builds 10M website sessions in random and in event-date order, then
# sql/bench/clustering_queries.sql filters one week from each, N times.
# Prints a Markdown table of the best times and their ratio.
# Usage: benches/clustering.sh [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marketing-pipeline/target}"
cargo build --release --locked >&2
bin="$CARGO_TARGET_DIR/release/marketing-pipeline"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PIPELINE_WAREHOUSE_URL="duckdb://$work/bench.duckdb" PIPELINE_LOG=warn
export PIPELINE_METADATA_URL="sqlite://$work/metadata.db"

"$bin" sql --file sql/bench/clustering.sql | tail -n 1 >"$work/build.json"
for _ in $(seq "$repeats"); do
    "$bin" sql --file sql/bench/clustering_queries.sql | tail -n 1
done >"$work/queries.json"

python3 - "$work/build.json" "$work/queries.json" "$repeats" <<'PY'
import json, sys
build = json.load(open(sys.argv[1]))
runs = [json.loads(line) for line in open(sys.argv[2])]
best = [min(r["statements"][i]["duration_ms"] for r in runs) for i in range(2)]
rows = runs[0]["rows"]
print(f"built 10M rows twice in {build['duration_ms'] / 1000:.1f} s; one week = {rows[0][0]} sessions")
print(f"| one-week filter over 10M sessions (DuckDB) | best of {sys.argv[3]}, ms |")
print("|---|---|")
print(f"| random order (unclustered) | {best[0]:.1f} |")
print(f"| ordered by EVENT_DATE (clustered) | {best[1]:.1f} |")
print(f"| ratio | {best[0] / best[1]:.1f}x |")
PY
