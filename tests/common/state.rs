//! The final state of a pipeline as one comparable value: every landing and
//! lake object (path and MD5), the metadata rows and the warehouse's RAW and
//! MART tables, with what legitimately varies between two equivalent
//! histories (timestamps, durations, `uploaded` vs `already_uploaded`)
//! left out, and everything sorted so that order does not matter.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Pipeline;
use super::servers::S3Server;

/// Where a pipeline's metadata lives.
#[derive(Clone, Debug)]
pub enum Metadata {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`).
    Postgres(String),
}

/// Where everything a pipeline writes lives, as seen from the test.
#[derive(Clone, Debug)]
pub struct Locations {
    /// The directory holding the landing area's objects (a local landing
    /// area, or the s3s-fs directory behind `s3://landing/marketing`).
    pub landing: PathBuf,
    /// The directory holding the lake's objects.
    pub lake: PathBuf,
    /// The s3s-fs root when the areas are on S3: object metadata (the
    /// `x-amz-meta-*` values) is kept there in dot-files.
    pub s3_root: Option<PathBuf>,
    pub metadata: Metadata,
    /// The DuckDB warehouse file.
    pub warehouse: PathBuf,
}

impl Locations {
    /// The local areas, SQLite metadata and DuckDB warehouse of `p`.
    pub fn local(p: &Pipeline) -> Self {
        Self {
            landing: p.landing(),
            lake: p.lake(),
            s3_root: None,
            metadata: Metadata::Sqlite(p.metadata_db()),
            warehouse: p.warehouse_db(),
        }
    }

    /// The same, with the landing area and lake on `server`
    /// (`S3Server::command`'s layout).
    pub fn on_s3(self, server: &S3Server) -> Self {
        Self {
            landing: server.landing_dir(),
            lake: server.lake_dir(),
            s3_root: Some(server.root_dir().to_path_buf()),
            ..self
        }
    }

    /// The same, with the metadata in the PostgreSQL database at `url`.
    pub fn on_postgres(self, url: &str) -> Self {
        Self {
            metadata: Metadata::Postgres(url.to_string()),
            ..self
        }
    }
}

/// A pipeline's state: part name (`landing`, `lake`, `s3-metadata`,
/// `metadata TABLE`, `warehouse SCHEMA.TABLE`) to its sorted lines (one per
/// object or row; duplicates kept, so a duplicated row is a difference).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub parts: BTreeMap<String, Vec<String>>,
}

impl State {
    /// What differs from `expected`, one line per part: the lines missing
    /// here and the extra ones (at most `limit` of each shown). Empty when
    /// the states are equal.
    pub fn diff(&self, expected: &State, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let empty = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.parts.keys().chain(expected.parts.keys()).collect();
        for name in names {
            let want = expected.parts.get(name).unwrap_or(&empty);
            let got = self.parts.get(name).unwrap_or(&empty);
            if want == got {
                continue;
            }
            let (missing, extra) = multiset_difference(want, got);
            let show = |lines: &[String]| {
                let mut s: Vec<String> = lines.iter().take(limit).cloned().collect();
                if lines.len() > limit {
                    s.push(format!("... {} more", lines.len() - limit));
                }
                s.join("\n        ")
            };
            out.push(format!(
                "{name}: {} expected, {} found; missing {}: [\n        {}]; extra {}: [\n        {}]",
                want.len(),
                got.len(),
                missing.len(),
                show(&missing),
                extra.len(),
                show(&extra)
            ));
        }
        out
    }

    /// The number of lines of one part (0 if absent).
    pub fn len(&self, part: &str) -> usize {
        self.parts.get(part).map_or(0, Vec::len)
    }
}

/// (lines of `want` not in `got`, lines of `got` not in `want`), counting
/// repeats; both inputs sorted.
fn multiset_difference(want: &[String], got: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut i, mut j) = (0, 0);
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    while i < want.len() || j < got.len() {
        match (want.get(i), got.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                missing.push(a.clone());
                i += 1;
            }
            (Some(_), Some(b)) => {
                extra.push(b.clone());
                j += 1;
            }
            (Some(a), None) => {
                missing.push(a.clone());
                i += 1;
            }
            (None, Some(b)) => {
                extra.push(b.clone());
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    (missing, extra)
}

/// Captures everything `at` holds. Run it only while no task is running.
///
/// Generic (like `warehouse_rows`) only so that DuckDB is linked into the
/// test binaries that call it, not into every one that declares `common`.
pub fn capture<L: std::borrow::Borrow<Locations>>(at: L) -> State {
    let at = at.borrow();
    let mut parts = BTreeMap::new();
    parts.insert("landing".to_string(), object_lines(&at.landing));
    parts.insert("lake".to_string(), object_lines(&at.lake));
    if let Some(root) = &at.s3_root {
        parts.insert("s3-metadata".to_string(), s3_metadata_lines(root));
    }
    for (table, rows) in metadata_rows(&at.metadata) {
        parts.insert(format!("metadata {table}"), rows);
    }
    for (table, rows) in warehouse_rows(&at.warehouse) {
        parts.insert(format!("warehouse {table}"), rows);
    }
    State { parts }
}

/// Files under `root`, relative, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `relative/path md5=HEX bytes=N` for every file under `root`.
/// Where the data-quality report is published. Its content is a view of
/// this history when it was written (this pipeline's paths, which patterns
/// were new to it), so two equivalent histories share its presence, not
/// its bytes.
const REPORTS: &str = "reports/";

fn object_lines(root: &Path) -> Vec<String> {
    files(root)
        .into_iter()
        .map(|rel| {
            if rel.starts_with(REPORTS) {
                return format!("{} (a report)", rel.display());
            }
            let bytes = std::fs::read(root.join(&rel)).unwrap_or_default();
            format!(
                "{} md5={:x} bytes={}",
                rel.display(),
                md5::compute(&bytes),
                bytes.len()
            )
        })
        .collect()
}

/// s3s-fs keeps each object's user metadata in a root-level dot-file
/// `.bucket-B64.object-B64.metadata.json` (those of unfinished multipart
/// uploads carry `.upload-ID` and are left out).
fn s3_metadata_lines(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        // "cmVwb3J0" is base64 for "report": a key under reports/.
        if !(name.starts_with(".bucket-") && name.ends_with(".metadata.json"))
            || name.contains(".upload-")
            || name.contains(".object-cmVwb3J0")
        {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let sorted: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap_or_default();
        out.push(format!(
            "{name} {}",
            serde_json::to_string(&sorted).unwrap()
        ));
    }
    out.sort();
    out
}

/// Temp files left under the areas: names ending in `.tmp` or holding
/// `.tmp-` (local writes), anywhere under the landing area or the lake.
pub fn temp_files(at: &Locations) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in [&at.landing, &at.lake] {
        for rel in files(root) {
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name.ends_with(".tmp") || name.contains(".tmp-") {
                out.push(root.join(rel));
            }
        }
    }
    out
}

/// Whether a metadata column varies between equivalent histories.
fn volatile_column(table: &str, column: &str) -> bool {
    column.ends_with("_at")
        || column.contains("duration")
        || (table == "file_metadata" && column == "status")
}

/// stage_log.metrics reduced to its `status` and row counts.
fn stable_metrics(text: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return format!("unparsable:{text}");
    };
    let kept: BTreeMap<&String, &Value> = map
        .iter()
        .filter(|(k, v)| k.as_str() == "status" || (k.contains("rows") && v.is_number()))
        .collect();
    serde_json::to_string(&kept).unwrap()
}

/// One row as `col=value|col=value` (volatile columns dropped).
fn row_line(table: &str, columns: &[String], values: Vec<String>) -> String {
    columns
        .iter()
        .zip(values)
        .filter(|(c, _)| !volatile_column(table, c))
        .map(|(c, v)| {
            let v = if table == "stage_log" && c == "metrics" {
                stable_metrics(&v)
            } else {
                v
            };
            format!("{c}={v}")
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Every metadata table's rows (all tables, so that a new one is compared
/// too), sorted.
pub fn metadata_rows(meta: &Metadata) -> BTreeMap<String, Vec<String>> {
    let mut out = match meta {
        Metadata::Sqlite(path) => sqlite_rows(path),
        Metadata::Postgres(url) => postgres_rows(url),
    };
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

/// Row counts of every metadata table.
pub fn metadata_counts(meta: &Metadata) -> BTreeMap<String, usize> {
    metadata_rows(meta)
        .into_iter()
        .map(|(t, rows)| (t, rows.len()))
        .collect()
}

fn sqlite_rows(path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    if !path.exists() {
        return out;
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        let mut lines = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let values = (0..columns.len())
                .map(|i| {
                    use rusqlite::types::ValueRef;
                    match row.get_ref(i).unwrap() {
                        ValueRef::Null => "NULL".to_string(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).to_string(),
                        ValueRef::Blob(b) => format!("blob:{:x}", md5::compute(b)),
                    }
                })
                .collect();
            lines.push(row_line(&table, &columns, values));
        }
        out.insert(table, lines);
    }
    out
}

fn postgres_rows(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[&table],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows = client
            .query(
                &format!("SELECT row_to_json(t)::text FROM \"{table}\" t"),
                &[],
            )
            .unwrap();
        let lines = rows
            .iter()
            .map(|r| {
                let json: Value = serde_json::from_str(&r.get::<_, String>(0)).unwrap();
                let values = columns
                    .iter()
                    .map(|c| match &json[c.as_str()] {
                        Value::Null => "NULL".to_string(),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                row_line(&table, &columns, values)
            })
            .collect();
        out.insert(table, lines);
    }
    out
}

/// RAW.* (RAW.LOAD_LOG included) and MART.* rows, every value as text,
/// LOADED_AT dropped, sorted. An absent warehouse file holds nothing.
pub fn warehouse_rows<P: AsRef<Path>>(path: P) -> BTreeMap<String, Vec<String>> {
    let path = path.as_ref();
    let mut out = BTreeMap::new();
    if !path.exists() {
        return out;
    }
    let conn = duckdb::Connection::open(path).unwrap();
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE upper(table_schema) IN ('RAW', 'MART') AND table_type = 'BASE TABLE'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (schema, table) in tables {
        let columns: Vec<String> = conn
            .prepare(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            )
            .unwrap()
            .query_map([&schema, &table], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|c: &String| !c.eq_ignore_ascii_case("LOADED_AT"))
            .collect();
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("CAST(\"{c}\" AS VARCHAR)"))
            .collect();
        let sql = format!("SELECT {} FROM \"{schema}\".\"{table}\"", select.join(", "));
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut lines: Vec<String> = stmt
            .query_map([], |r| {
                let mut fields = Vec::with_capacity(columns.len());
                for (i, c) in columns.iter().enumerate() {
                    let v: Option<String> = r.get(i)?;
                    fields.push(format!("{c}={}", v.as_deref().unwrap_or("NULL")));
                }
                Ok(fields.join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        lines.sort();
        // Upper case: dbt names relations in lower case, setup.sql in upper.
        out.insert(
            format!("{}.{}", schema.to_uppercase(), table.to_uppercase()),
            lines,
        );
    }
    out
}
