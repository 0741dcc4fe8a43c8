"""The floor under validate: Polars reads the raw file (all text for CSV, as
the contract is not applied) and writes it as zstd-1 Parquet, nothing checked.

Usage: polars_floor.py RAW_FILE OUT.parquet
"""

import sys

import polars as pl


def main() -> None:
    raw, out = sys.argv[1], sys.argv[2]
    if raw.endswith(".csv"):
        frame = pl.read_csv(raw, infer_schema_length=0)
    elif raw.endswith(".jsonl"):
        frame = pl.read_ndjson(raw)
    else:
        frame = pl.read_parquet(raw)
    frame.write_parquet(out, compression="zstd", compression_level=1)
    print(frame.height)


if __name__ == "__main__":
    main()
