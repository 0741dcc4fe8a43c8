"""validate's checks and outputs written in DuckDB SQL, from the same
contracts: every column cast (TRY_CAST), not_null, unique (the first row of
a key is kept), the format patterns, accepted values, ranges, foreign keys
against the referenced raw files, consistency and freshness; the valid rows
typed and the quarantined rows as text with their failed checks, both zstd-1
Parquet.

Usage: duckdb_validate.py CONTRACTS DATASET LANDING DS OUT_DIR
"""

import json
import sys
from pathlib import Path

import duckdb
import yaml

EMAIL = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TYPES = {
    "text": "VARCHAR",
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def raw_path(landing: str, table: dict, ds: str) -> str:
    name, ext = table["name"], EXTENSIONS[table["meta"]["format"]]
    return f"{landing}/raw-data/{name}/ds={ds}/{name}_{ds}.{ext}"


def reader(path: str, table: dict) -> str:
    """The raw file as text columns (Parquet with its own types)."""
    columns = ", ".join(f"{quote(c['name'])}: 'VARCHAR'" for c in table["columns"])
    match table["meta"]["format"]:
        case "csv":
            return f"read_csv({quote(path)}, header = true, all_varchar = true)"
        case "jsonl":
            return f"read_json({quote(path)}, format = 'newline_delimited', columns = {{{columns}}})"
        case _:
            return f"read_parquet({quote(path)})"


def normalized(expr: str) -> str:
    return f"trim(regexp_replace(lower(trim({expr})), '[\\s_-]+', '_', 'g'), '_')"


def checks(table: dict, ds: str) -> list[tuple[str, str]]:
    """(label, SQL true where a row fails) for every check."""
    out = []
    date_column = table["meta"].get("date_column")
    for column in table["columns"]:
        name, typed = column["name"], f'"__typed_{column["name"]}"'
        present = f"{typed} IS NOT NULL"
        out.append((f"type_cast:{name}", f'"{name}" IS NOT NULL AND {typed} IS NULL'))
        for test in column.get("data_tests", []):
            rule, args = (test, {}) if isinstance(test, str) else next(iter(test.items()))
            match rule:
                case "not_null":
                    out.append((f"not_null:{name}", f'"{name}" IS NULL'))
                case "unique":
                    out.append((f"unique:{name}", f"{present} AND __seen_{name} > 1"))
                case "email_format":
                    out.append((f"email_format:{name}", f"{present} AND NOT regexp_matches({typed}, {quote(EMAIL)})"))
                case "uuid_format":
                    out.append((f"uuid_format:{name}", f"{present} AND NOT regexp_matches({typed}, {quote(UUID)})"))
                case "accepted_values":
                    values = ", ".join(quote(v) for v in args["values"])
                    value = normalized(typed) if args.get("normalized") else typed
                    out.append((f"accepted_values:{name}", f"{present} AND {value} NOT IN ({values})"))
                case "range":
                    bounds = []
                    if "min" in args:
                        bounds.append(f"{typed} < {args['min']}")
                    if "max" in args:
                        bounds.append(f"{typed} > {args['max']}")
                    out.append((f"range:{name}", f"{present} AND ({' OR '.join(bounds)})"))
                case "relationships":
                    out.append((f"foreign_key:{name}", f"{present} AND __ref_{name}.k IS NULL"))
                case "true_exactly_when":
                    other = f'"__typed_{args["column"]}"'
                    out.append(
                        (f"consistency:{name}", f"{present} AND {typed} <> ({other} = {quote(str(args['value']))})")
                    )
        if name == date_column:
            out.append((f"freshness:{name}", f"{present} AND CAST({typed} AS DATE) <> DATE {quote(ds)}"))
    return out


def main() -> None:
    contracts, dataset, landing, ds, out = sys.argv[1:6]
    tables = {t["name"]: t for t in yaml.safe_load(Path(contracts).read_text())["sources"][0]["tables"]}
    table = tables[dataset]
    columns = table["columns"]
    typed = ", ".join(f'TRY_CAST("{c["name"]}" AS {TYPES[c["data_type"]]}) AS "__typed_{c["name"]}"' for c in columns)
    seen = ", ".join(
        f'row_number() OVER (PARTITION BY "__typed_{c["name"]}" ORDER BY __row) AS __seen_{c["name"]}'
        for c in columns
        if "unique" in c.get("data_tests", [])
    )
    joins = []
    for c in columns:
        for test in c.get("data_tests", []):
            if isinstance(test, dict) and "relationships" in test:
                rel = test["relationships"]
                target = tables[rel["to"].split("'")[-2]]
                source = reader(raw_path(landing, target, ds), target)
                joins.append(
                    f'LEFT JOIN (SELECT DISTINCT CAST("{rel["field"]}" AS VARCHAR) AS k FROM {source}) '
                    f'AS __ref_{c["name"]} ON __ref_{c["name"]}.k = "__typed_{c["name"]}"'
                )
    flags = checks(table, ds)
    failing = " OR ".join(f"({sql})" for _, sql in flags)
    labels = ", ".join(f"CASE WHEN {sql} THEN {quote(label)} END" for label, sql in flags)
    source = reader(raw_path(landing, table, ds), table)
    db = duckdb.connect()
    db.execute(
        f"""CREATE TABLE typed AS
        SELECT *, {typed} FROM (SELECT *, row_number() OVER () AS __row FROM {source})"""
    )
    db.execute(
        f"""CREATE TABLE flagged AS
        SELECT *, coalesce({failing}, false) AS __invalid, concat_ws(';', {labels}) AS failed_checks
        FROM (SELECT *{", " + seen if seen else ""} FROM typed) AS t {" ".join(joins)}"""
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    parquet = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
    valid = ", ".join(f'"__typed_{c["name"]}" AS "{c["name"]}"' for c in columns)
    raw = ", ".join(f'CAST("{c["name"]}" AS VARCHAR) AS "{c["name"]}"' for c in columns)
    db.execute(
        f"COPY (SELECT {valid} FROM flagged WHERE NOT __invalid ORDER BY __row) TO '{out}/valid.parquet' {parquet}"
    )
    db.execute(
        f"COPY (SELECT {raw}, failed_checks FROM flagged WHERE __invalid ORDER BY __row) "
        f"TO '{out}/quarantine.parquet' {parquet}"
    )
    rows, invalid = db.execute("SELECT count(*), count(*) FILTER (__invalid) FROM flagged").fetchone()
    print(json.dumps({"rows_in": rows, "valid": rows - invalid, "invalid": invalid}))


if __name__ == "__main__":
    main()
