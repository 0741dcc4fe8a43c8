#!/usr/bin/env bash
# Publishing throughput to a local S3 server: `upload` of a scale-factor-N
# lake (default 100) versus `aws s3 cp --recursive` of the same files to the
# same server in the same run. Prints a Markdown table.
# Usage: benches/s3_publish.sh [scale_factor]
set -euo pipefail
cd "$(dirname "$0")/.."
sf="${1:-100}"
cache="${MARKETING_PIPELINE_CACHE:-$HOME/.cache/marketing-pipeline}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
cargo build --release --locked >&2
bin="$CARGO_TARGET_DIR/release/marketing-pipeline"
s3s="$cache/tools/bin/s3s-fs"
[ -x "$s3s" ] || cargo install s3s-fs --version 0.14.1 --features binary --locked \
    --root "$cache/tools" --target-dir "$cache/tools-target" >&2
aws_venv="$cache/awscli-venv"
[ -x "$aws_venv/bin/aws" ] || { python3 -m venv "$aws_venv" && "$aws_venv/bin/pip" -q install awscli; } >&2

work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/s3/lake" "$work/s3/awscli"
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done

export PIPELINE_LANDING_URL="file://$work/landing" PIPELINE_METADATA_URL="sqlite://$work/metadata.db"
export PIPELINE_LAKE_URL="file://$work/local-lake" SCALE_FACTOR="$sf" PIPELINE_LOG=warn
ds=2025-05-25
"$bin" run --ds "$ds" >/dev/null 2>&1 || true   # builds the landing slices
bytes=$(find "$work/landing/valid-data" "$work/landing/quarantine-data" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$work/landing/valid-data" "$work/landing/quarantine-data" -type f | wc -l)

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" PIPELINE_LAKE_URL=s3://lake
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
start=$(date +%s.%N)
for d in campaigns forms pages contacts form_fills website_activity; do
    "$bin" upload "$d" --ds "$ds" >/dev/null
done
ours=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
for zone in valid-data quarantine-data; do
    "$aws_venv/bin/aws" s3 cp --recursive --only-show-errors "$work/landing/$zone" "s3://awscli/$zone"
done
theirs=$(echo "$(date +%s.%N) - $start" | bc)

mb=$(echo "scale=1; $bytes / 1000000" | bc)
echo "| publish $files objects, $mb MB (scale factor $sf) to s3s-fs on 127.0.0.1 | seconds | MB/s |"
echo "|---|---|---|"
printf '| marketing-pipeline upload (6 datasets, MD5 + HEAD check each) | %.2f | %.0f |\n' "$ours" "$(echo "$mb / $ours" | bc -l)"
printf '| aws s3 cp --recursive (AWS CLI %s) | %.2f | %.0f |\n' "$("$aws_venv/bin/aws" --version 2>&1 | cut -d' ' -f1 | cut -d/ -f2)" "$theirs" "$(echo "$mb / $theirs" | bc -l)"
