#!/usr/bin/env bash
# Release-build benchmark at scale factor 100: generate and validate 1M
# contacts, then the whole `run`. Prints a Markdown table (wall seconds,
# best of N, and peak RSS). Usage: benches/pipeline.sh [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marketing-pipeline/target}"
cargo build --release --locked >&2
bin="$CARGO_TARGET_DIR/release/marketing-pipeline"
[ -x /usr/bin/time ] || apt-get install -y time >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PIPELINE_LANDING_URL="file://$work/landing" PIPELINE_LAKE_URL="file://$work/lake"
export PIPELINE_METADATA_URL="sqlite://$work/metadata.db" SCALE_FACTOR=100 PIPELINE_LOG=warn
ds=2025-05-25

# best_of N CMD...: prints "best_seconds peak_rss_mb" over N runs.
best_of() {
    local n="$1"; shift
    local best="" rss=0
    for _ in $(seq "$n"); do
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
            cat "$work/stderr" >&2; exit 1; }
        read -r secs kb <"$work/time"
        if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best="$secs"; fi
        [ "$kb" -gt "$rss" ] && rss="$kb"
    done
    echo "$best $((rss / 1024))"
}

for d in campaigns forms pages; do "$bin" generate "$d" --ds "$ds" >/dev/null 2>&1; done
read -r gen_s gen_mb < <(best_of "$repeats" "$bin" generate contacts --ds "$ds" --force)
read -r val_s val_mb < <(best_of "$repeats" "$bin" validate contacts --ds "$ds" --force)
csv_mb=$(( $(stat -c %s "$work/landing/raw-data/contacts/ds=$ds/contacts_$ds.csv") / 1000000 ))
rm -rf "$work/landing" "$work/lake" "$work/metadata.db"*
read -r run_s run_mb < <(best_of 1 "$bin" run --ds "$ds")

echo "| step (scale factor 100, release, $(nproc) cores) | wall s (best of $repeats) | peak RSS MB |"
echo "|---|---|---|"
echo "| generate contacts (1M rows, ${csv_mb} MB CSV) | $gen_s | $gen_mb |"
echo "| validate contacts (1M rows) | $val_s | $val_mb |"
echo "| run --ds $ds (all 6 datasets: 8.0M rows; 1 run) | $run_s | $run_mb |"
