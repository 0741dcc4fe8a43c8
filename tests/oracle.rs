//! The oracle: an independent implementation of the contracts in DuckDB
//! SQL recomputes every check's failing rows from the raw files, and the
//! valid rows' keys, and must agree exactly with validate (Polars) — on
//! generated files with injected defects and on hand-made ones.
//!
//! Only the contract is shared (read through the library's catalogue); the
//! reading, casting and checking are DuckDB's.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{DS, Pipeline};
use marketing_pipeline::catalog::{Catalogue, ColumnType, Dataset, Format, Rule, Severity};

/// SQL that reads a raw file into text columns and a row number. NDJSON
/// is the table `json_load` made of it (this DuckDB has no JSON reader).
fn read_raw(dataset: Dataset, path: &Path) -> String {
    let path = path.display();
    let source = match dataset.format() {
        Format::Csv => format!("read_csv('{path}', all_varchar = true, header = true)"),
        Format::NdJson => format!("json_{}", dataset.name()),
        Format::Parquet => format!("read_parquet('{path}')"),
    };
    let columns: Vec<String> = dataset
        .columns()
        .iter()
        .map(|c| format!("CAST(\"{0}\" AS VARCHAR) AS \"{0}\"", c.name))
        .collect();
    format!(
        "SELECT row_number() OVER () AS row_no, {} FROM {source}",
        columns.join(", ")
    )
}

/// The typed value of a text column, as the contract's type reads it.
fn typed(column: &str, ty: ColumnType) -> String {
    let v = format!("\"{column}\"");
    match ty {
        ColumnType::Text => v,
        ColumnType::Bool => format!(
            "CASE WHEN lower(trim({v})) IN ('true','t','1','yes','y') THEN true \
                  WHEN lower(trim({v})) IN ('false','f','0','no','n') THEN false END"
        ),
        ColumnType::Int => format!(
            "CASE WHEN TRY_CAST({v} AS DOUBLE) = floor(TRY_CAST({v} AS DOUBLE)) \
                  THEN TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT) END"
        ),
        ColumnType::Float => format!("TRY_CAST({v} AS DOUBLE)"),
        ColumnType::Date => format!("TRY_STRPTIME({v}, '%Y-%m-%d')::DATE"),
        // ISO 8601 with an optional offset, as UTC.
        ColumnType::Timestamp => {
            let text = format!("replace(trim({v}), ' ', 'T')");
            let zone = r"([Zz]|([+-])([0-9]{2}):?([0-9]{2})?)$";
            let local = format!("regexp_replace({text}, '{zone}', '')");
            let sign =
                format!("CASE regexp_extract({text}, '{zone}', 2) WHEN '-' THEN -1 ELSE 1 END");
            let hours =
                format!("coalesce(TRY_CAST(regexp_extract({text}, '{zone}', 3) AS INTEGER), 0)");
            let minutes =
                format!("coalesce(TRY_CAST(regexp_extract({text}, '{zone}', 4) AS INTEGER), 0)");
            format!(
                "TRY_STRPTIME({local}, ['%Y-%m-%dT%H:%M:%S.%f', '%Y-%m-%dT%H:%M:%S']) \
                 - to_minutes(CAST({sign} * ({hours} * 60 + {minutes}) AS BIGINT))"
            )
        }
    }
}

/// One boolean expression per check, true where a row fails it, with the
/// check's name and whether a failing row is quarantined.
fn checks(dataset: Dataset, ds: &str, raw_dir: &Path) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for column in dataset.columns() {
        let raw = format!("\"{}\"", column.name);
        let value = typed(column.name, column.ty);
        let present = format!("({value}) IS NOT NULL");
        out.push((
            "type_cast".to_string(),
            format!("{raw} IS NOT NULL AND ({value}) IS NULL"),
            true,
        ));
        let mut add = |check: &str, fails: String, severity: Severity| {
            out.push((check.to_string(), fails, severity == Severity::Error))
        };
        if let Some(t) = column.test(Rule::NotNull) {
            add("not_null", format!("{raw} IS NULL"), t.config.severity);
        }
        if let Some(t) = column.test(Rule::Unique) {
            add(
                "unique",
                format!(
                    "{present} AND row_number() OVER (PARTITION BY CAST(({value}) AS VARCHAR) ORDER BY row_no) > 1"
                ),
                t.config.severity,
            );
        }
        if Some(column.name) == dataset.date_column() {
            add(
                "freshness",
                format!("{present} AND CAST(({value}) AS DATE) <> DATE '{ds}'"),
                Severity::Error,
            );
        }
        for test in column.tests {
            let fails = match test.rule {
                Rule::NotNull | Rule::Unique => continue,
                Rule::Email => (
                    "email_format",
                    format!(
                        "NOT regexp_full_match({value}, '{}')",
                        concat!(
                            r"[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&''*+/=?^_`{|}~-]+)*",
                            r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
                        )
                    ),
                ),
                Rule::Pattern(pattern) => (
                    "pattern",
                    format!(
                        "NOT regexp_matches({value}, '{}')",
                        pattern.replace('\'', "''")
                    ),
                ),
                Rule::Uuid => (
                    "uuid_format",
                    format!(
                        "NOT regexp_full_match({value}, '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}')"
                    ),
                ),
                Rule::Range { min, max } => {
                    let mut outside = Vec::new();
                    if let Some(min) = min {
                        outside.push(format!("CAST(({value}) AS DOUBLE) < {min}"));
                    }
                    if let Some(max) = max {
                        outside.push(format!("CAST(({value}) AS DOUBLE) > {max}"));
                    }
                    ("range", format!("({})", outside.join(" OR ")))
                }
                Rule::AcceptedValues { values, normalized } => {
                    let compared = match normalized {
                        true => format!(
                            "trim(regexp_replace(lower(trim({value})), '[\\s_-]+', '_', 'g'), '_')"
                        ),
                        false => value.clone(),
                    };
                    let list: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                    (
                        "accepted_values",
                        format!("{compared} NOT IN ({})", list.join(", ")),
                    )
                }
                Rule::References {
                    dataset: target,
                    field,
                } => {
                    let target = dataset
                        .references()
                        .into_iter()
                        .find(|d| d.name() == target)
                        .unwrap();
                    let file = raw_dir.join(target.raw_key(DS.parse().unwrap()));
                    (
                        "foreign_key",
                        format!(
                            "({value}) NOT IN (SELECT \"{field}\" FROM ({}) WHERE \"{field}\" IS NOT NULL)",
                            read_raw(target, &file)
                        ),
                    )
                }
                Rule::TrueExactlyWhen {
                    column: other,
                    value: v,
                } => {
                    let other_ty = dataset.column(other).unwrap().ty;
                    (
                        "consistency",
                        // Unknown when the other column is null: not a failure.
                        format!("({value}) <> (({}) = {v})", typed(other, other_ty)),
                    )
                }
            };
            let (check, fails) = fails;
            add(
                check,
                format!("{present} AND {fails}"),
                test.config.severity,
            );
        }
    }
    out
}

/// An NDJSON file as the table `json_<dataset>` of text columns, parsed
/// line by line with serde_json: strings as they are, other values as
/// their JSON text, null and missing as NULL.
fn json_load(db: &duckdb::Connection, dataset: Dataset, path: &Path) {
    let columns: Vec<String> = dataset
        .columns()
        .iter()
        .map(|c| format!("\"{}\" VARCHAR", c.name))
        .collect();
    db.execute_batch(&format!(
        "CREATE TABLE json_{} ({})",
        dataset.name(),
        columns.join(", ")
    ))
    .unwrap();
    let mut appender = db.appender(&format!("json_{}", dataset.name())).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let values = dataset.columns().iter().map(|c| match row.get(c.name) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        });
        appender
            .append_row(duckdb::appender_params_from_iter(values))
            .unwrap();
    }
}

/// What the oracle finds: failing rows per check (as validate's `failed`
/// sums them) and the keys of the valid rows, sorted.
fn oracle(dataset: Dataset, landing: &Path) -> (BTreeMap<String, u64>, Vec<String>) {
    let raw = landing.join(dataset.raw_key(DS.parse().unwrap()));
    let checks = checks(dataset, DS, landing);
    let flags: Vec<String> = checks
        .iter()
        .enumerate()
        .map(|(i, (_, fails, _))| format!("coalesce(({fails}), false) AS f{i}"))
        .collect();
    let invalid: Vec<String> = (checks.iter().enumerate())
        .filter(|(_, (_, _, quarantines))| *quarantines)
        .map(|(i, _)| format!("f{i}"))
        .collect();
    let db = duckdb::Connection::open_in_memory().unwrap();
    for d in std::iter::once(dataset).chain(dataset.references()) {
        if d.format() == Format::NdJson {
            json_load(&db, d, &landing.join(d.raw_key(DS.parse().unwrap())));
        }
    }
    let flagged = format!(
        "CREATE TABLE flagged AS SELECT *, {} FROM ({}) raw",
        flags.join(", "),
        read_raw(dataset, &raw)
    );
    db.execute_batch(&flagged).unwrap();
    let mut failed = BTreeMap::new();
    for (i, (check, _, _)) in checks.iter().enumerate() {
        let n: i64 = db
            .query_row(
                &format!("SELECT count(*) FROM flagged WHERE f{i}"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        if n > 0 {
            *failed.entry(check.clone()).or_default() += n as u64;
        }
    }
    let valid = format!(
        "SELECT \"{}\" FROM flagged WHERE NOT ({}) ORDER BY 1",
        dataset.key(),
        invalid.join(" OR ")
    );
    (failed, keys(&db, &valid))
}

/// The first column of a query's rows, as text.
fn keys(db: &duckdb::Connection, query: &str) -> Vec<String> {
    let mut statement = db.prepare(query).unwrap();
    statement
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .map(|k| k.unwrap().unwrap_or_default())
        .collect()
}

/// What validate reported: its `failed` counts and its valid slice's keys.
fn validated(p: &Pipeline, dataset: Dataset) -> (BTreeMap<String, u64>, Vec<String>) {
    let metrics = p.ok(
        &[
            "validate",
            dataset.name(),
            "--ds",
            DS,
            "--max-invalid-ratio",
            "0.99",
            "--force",
        ],
        0,
    );
    let failed = serde_json::from_value(metrics["failed"].clone()).unwrap_or_default();
    let slice = p.landing().join(format!(
        "valid-data/{0}/ds={DS}/{0}_{DS}.parquet",
        dataset.name()
    ));
    let db = duckdb::Connection::open_in_memory().unwrap();
    let query = format!(
        "SELECT CAST(\"{}\" AS VARCHAR) FROM read_parquet('{}') ORDER BY 1",
        dataset.key(),
        slice.display()
    );
    (failed, keys(&db, &query))
}

#[test]
fn validate_agrees_with_the_oracle_on_generated_defects() {
    let p = Pipeline::new();
    p.generate_all();
    for &dataset in Catalogue::embedded().datasets() {
        let (oracle_failed, oracle_keys) = oracle(dataset, &p.landing());
        let (failed, keys) = validated(&p, dataset);
        assert_eq!(failed, oracle_failed, "{dataset}: failing rows per check");
        assert_eq!(keys, oracle_keys, "{dataset}: valid keys");
        if dataset.is_fact() {
            assert!(
                !failed.is_empty(),
                "{dataset}: the generator injected defects"
            );
        }
    }
}

#[test]
fn validate_agrees_with_the_oracle_on_hand_made_contacts() {
    let p = Pipeline::new();
    p.generate_all();
    let id = |n: u32| format!("{n:08x}-8a43-4b2a-9d1e-0c6f3f5a8e21");
    let header = "contact_id,first_name,last_name,email,company,industry,lead_source,job_title,country,opted_in,signup_date";
    let rows = [
        format!(
            "{},Ada,Lovelace,o'brien+tag@sub.example.co.uk,Acme,Tech,Organic Search,CTO,UK,yes,{DS}T05:30:08Z",
            id(1)
        ),
        format!(
            "{},Bo,Li,bo@example.com,Acme,Tech,Paid Social,CTO,UK,no,{DS}T22:22:55+02:00",
            id(2)
        ),
        format!(
            "{},Cy,Ng,cy@example.com,Acme,Tech, web ,CTO,UK,1,{DS} 23:31:05.123",
            id(3)
        ),
        // Late in the day with a negative offset: the next day in UTC.
        format!(
            "{},Di,Ro,di@example.com,Acme,Tech,Event,CTO,UK,t,{DS}T22:00:00-05:00",
            id(4)
        ),
        format!(
            "{},Ed,Su,ed..x@example.com,Acme,Tech,event,CTO,UK,f,{DS}T01:00:00",
            id(5)
        ),
        format!(
            "{},Fa,Yu,fa@example,Acme,Tech,Billboard,CTO,UK,maybe,not a time",
            id(6)
        ),
        format!(
            "{},Ge,Wu,ge@example.com,Acme,Tech,referral,CTO,UK,true,{DS}T10:00:00",
            id(1)
        ),
        format!(",Ha,Xi,ha@example.com,Acme,,direct,CTO,UK,false,{DS}T10:00:00"),
        "tmp-1234,Io,Ze,io@example.com,Acme,Tech,webinar,CTO,UK,n,2025-05-24T10:00:00".to_string(),
    ];
    std::fs::write(
        p.raw_path("contacts", "csv"),
        format!("{header}\n{}\n", rows.join("\n")),
    )
    .unwrap();
    let contacts = Dataset::named("contacts");
    let (oracle_failed, oracle_keys) = oracle(contacts, &p.landing());
    let (failed, keys) = validated(&p, contacts);
    assert_eq!(failed, oracle_failed);
    assert_eq!(keys, oracle_keys);
    // The expectations themselves, so both cannot be wrong the same way.
    assert_eq!(keys, [id(1), id(2), id(3)]);
    for check in [
        "freshness",
        "email_format",
        "accepted_values",
        "type_cast",
        "unique",
        "not_null",
        "uuid_format",
    ] {
        assert!(failed.contains_key(check), "{check}: {failed:?}");
    }
}
