"""The seed's validation, in pandas: the file read whole, the columns
checked against the contract, null and unique keys, the email pattern and
freshness; valid and quarantined rows written as zstd Parquet.

Usage: pandas_validate.py CONTRACTS DATASET RAW_FILE DS OUT_DIR
"""

import json
import sys
from pathlib import Path

import pandas as pd
import yaml

EMAIL = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def main() -> None:
    contracts, dataset, raw, ds, out = sys.argv[1:6]
    table = next(t for t in yaml.safe_load(Path(contracts).read_text())["sources"][0]["tables"] if t["name"] == dataset)
    meta, columns = table["meta"], table["columns"]
    if raw.endswith(".csv"):
        frame = pd.read_csv(raw, dtype=str, keep_default_na=False, na_values=[""])
    elif raw.endswith(".jsonl"):
        frame = pd.read_json(raw, lines=True, dtype=False)
    else:
        frame = pd.read_parquet(raw)
    names = [c["name"] for c in columns]
    if sorted(frame.columns) != sorted(names):
        raise SystemExit(f"columns do not match the contract: {sorted(frame.columns)}")
    key = meta["key"]
    reasons = pd.Series("", index=frame.index)

    def fail(mask: pd.Series, label: str) -> None:
        reasons.loc[mask] += label + ";"

    for column in columns:
        tests = [t if isinstance(t, str) else next(iter(t)) for t in column.get("data_tests", [])]
        values = frame[column["name"]]
        if "not_null" in tests:
            fail(values.isna(), f"not_null:{column['name']}")
        if "email_format" in tests:
            fail(values.notna() & ~values.astype(str).str.match(EMAIL), f"email_format:{column['name']}")
    fail(frame[key].notna() & frame[key].duplicated(keep="first"), f"unique:{key}")
    if "date_column" in meta:
        day = pd.to_datetime(frame[meta["date_column"]], errors="coerce", utc=True, format="mixed").dt.date
        fail(day != pd.Timestamp(ds).date(), f"freshness:{meta['date_column']}")
    invalid = reasons != ""
    Path(out).mkdir(parents=True, exist_ok=True)
    frame[~invalid].to_parquet(f"{out}/valid.parquet", compression="zstd")
    quarantine = frame[invalid].astype(str).assign(failed_checks=reasons[invalid])
    quarantine.to_parquet(f"{out}/quarantine.parquet", compression="zstd")
    print(json.dumps({"rows_in": len(frame), "valid": int((~invalid).sum()), "invalid": int(invalid.sum())}))


if __name__ == "__main__":
    main()
