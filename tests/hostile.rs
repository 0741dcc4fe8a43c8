//! Hostile input corpus (issue 11): broken, odd and malicious raw files in
//! all three formats. Each case asserts the exit code (65 for a rejected
//! file, 0 when its rows are readable), no panic, a one-line error naming
//! the file and the problem, a bounded quarantine copy of a rejected file,
//! and rows_in = rows_out + invalid_rows wherever rows were readable.
//!
//! Every case runs; the failing ones are listed together at the end.
//! HOSTILE_VERBOSE=1 prints every case's outcome.

mod common;

use std::io::Cursor;

use polars::prelude::*;
use serde_json::Value;

use common::{DS, Pipeline, Run};

const MIB: usize = 1 << 20;

const CONTACTS_HEADER: &str = "contact_id,first_name,last_name,email,company,industry,lead_source,job_title,country,opted_in,signup_date";

/// What a case must produce.
enum Expect {
    /// Rejected whole (65). Each entry must occur in the error
    /// (case-insensitive); `a|b` accepts either.
    Rejected(&'static [&'static str]),
    /// Read row by row (0), with these counts when given.
    Readable {
        rows_in: Option<u64>,
        rows_out: Option<u64>,
    },
    /// Readable, but more invalid rows than the tolerance (65).
    OverTolerance { rows_in: u64 },
    /// The spec leaves the outcome open: either readable (0) or rejected
    /// (65), each with its own checks.
    Handled,
}

struct Case {
    name: &'static str,
    dataset: &'static str,
    bytes: Vec<u8>,
    env: Vec<(&'static str, String)>,
    max_invalid_ratio: &'static str,
    expect: Expect,
}

fn case(name: &'static str, dataset: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        dataset,
        bytes,
        env: Vec::new(),
        max_invalid_ratio: "1",
        expect,
    }
}

impl Case {
    fn env(mut self, key: &'static str, value: impl ToString) -> Self {
        self.env.push((key, value.to_string()));
        self
    }

    fn ratio(mut self, ratio: &'static str) -> Self {
        self.max_invalid_ratio = ratio;
        self
    }
}

fn readable(rows_in: u64, rows_out: u64) -> Expect {
    Expect::Readable {
        rows_in: Some(rows_in),
        rows_out: Some(rows_out),
    }
}

fn readable_rows(rows_in: u64) -> Expect {
    Expect::Readable {
        rows_in: Some(rows_in),
        rows_out: None,
    }
}

fn extension(dataset: &str) -> &'static str {
    match dataset {
        "contacts" => "csv",
        "form_fills" => "parquet",
        _ => "jsonl",
    }
}

/// Deterministic noise (xorshift), so the corpus is the same on every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn lines(parts: &[String]) -> Vec<u8> {
    let mut out = parts.join("\n");
    out.push('\n');
    out.into_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out
}

fn assert_no_panic(run: &Run) -> Result<(), String> {
    for sign in [
        "panicked",
        "\"panic\"",
        "overflowed its stack",
        "memory allocation",
    ] {
        if let Some(line) = run.stderr.lines().find(|l| l.contains(sign)) {
            let line: String = line.chars().take(400).collect();
            return Err(format!("stderr shows {sign:?}: {line}"));
        }
    }
    Ok(())
}

fn tail(s: &str) -> String {
    let s = s.trim_end();
    let start = s.len().saturating_sub(600);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_string()
}

fn u64_of(metrics: &Value, field: &str) -> Result<u64, String> {
    metrics[field]
        .as_u64()
        .ok_or_else(|| format!("metrics has no {field}: {metrics}"))
}

/// Runs one case against `p` (whose other raw files are the generated ones).
fn run_case(p: &Pipeline, c: &Case) -> Result<(), String> {
    let ext = extension(c.dataset);
    let path = p.raw_path(c.dataset, ext);
    std::fs::write(&path, &c.bytes).unwrap();
    let mut cmd = p.command(&[
        "validate",
        c.dataset,
        "--ds",
        DS,
        "--force",
        "--max-invalid-ratio",
        c.max_invalid_ratio,
    ]);
    for (key, value) in &c.env {
        cmd.env(key, value);
    }
    let run = common::finish(cmd.output().unwrap());
    if std::env::var_os("HOSTILE_VERBOSE").is_some() {
        eprintln!(
            "{}: exit {} rows_in {} rows_out {} invalid {} error {}",
            c.name,
            run.code,
            run.metrics["rows_in"],
            run.metrics["rows_out"],
            run.metrics["invalid_rows"],
            run.metrics["error"]
        );
    }
    assert_no_panic(&run)?;
    if !run.metrics.is_object() {
        return Err(format!(
            "exit {}, no metrics line on stdout: {:?}; stderr: {}",
            run.code,
            tail(&run.stdout),
            tail(&run.stderr)
        ));
    }
    match &c.expect {
        Expect::Rejected(words) => rejected(p, c, &run, words),
        Expect::Readable { rows_in, rows_out } => readable_checks(p, c, &run, *rows_in, *rows_out),
        Expect::OverTolerance { rows_in } => {
            rejection_message(c, &run, &["over the tolerance"])?;
            counts_add_up(&run.metrics)?;
            let got = u64_of(&run.metrics, "rows_in")?;
            if got != *rows_in {
                return Err(format!("rows_in {got}, expected {rows_in}"));
            }
            Ok(())
        }
        Expect::Handled => match run.code {
            0 => readable_checks(p, c, &run, None, None),
            65 => rejected(p, c, &run, &[]),
            code => Err(format!(
                "exit {code}, expected 0 (rows read) or 65 (rejected); error {:?}",
                run.metrics["error"]
            )),
        },
    }
}

/// 65, status rejected, a one-line error that starts with the raw file URL
/// and names the problem.
fn rejection_message(c: &Case, run: &Run, words: &[&str]) -> Result<(), String> {
    let error = run.metrics["error"].as_str().unwrap_or_default();
    if run.code != 65 {
        return Err(format!(
            "exit {}, expected 65; status {}, rows_in {}, rows_out {}, error {error:?}",
            run.code, run.metrics["status"], run.metrics["rows_in"], run.metrics["rows_out"]
        ));
    }
    if run.metrics["status"] != "rejected" {
        return Err(format!(
            "status {}, expected rejected",
            run.metrics["status"]
        ));
    }
    if error.is_empty() || error.contains('\n') || error.contains('\r') {
        return Err(format!("error is not one line: {error:?}"));
    }
    let file_name = format!("{}_{DS}.{}", c.dataset, extension(c.dataset));
    if !error.starts_with("file://") || !error.contains(&file_name) {
        return Err(format!(
            "error does not start with the raw file URL (…/{file_name}): {error:?}"
        ));
    }
    let lower = error.to_lowercase();
    for word in words {
        if !word.split('|').any(|w| lower.contains(&w.to_lowercase())) {
            return Err(format!("error does not mention {word:?}: {error:?}"));
        }
    }
    Ok(())
}

fn rejected(p: &Pipeline, c: &Case, run: &Run, words: &[&str]) -> Result<(), String> {
    rejection_message(c, run, words)?;
    if p.slice_path(&p.landing(), "valid-data", c.dataset).exists() {
        return Err("a valid slice was left beside a rejected file".into());
    }
    // A file rejected whole is quarantined by reference and a bounded copy.
    let quarantine = p.slice_path(&p.landing(), "quarantine-data", c.dataset);
    let q = std::fs::File::open(&quarantine)
        .map_err(|e| format!("no quarantine slice {}: {e}", quarantine.display()))
        .and_then(|f| {
            ParquetReader::new(f)
                .finish()
                .map_err(|e| format!("quarantine slice unreadable: {e}"))
        })?;
    if q.height() != 1 {
        return Err(format!("quarantine has {} rows, expected 1", q.height()));
    }
    let cell = |name: &str| quarantine_cell(&q, name);
    let size = match cell("content_bytes")? {
        AnyValue::UInt64(n) => n,
        other => return Err(format!("content_bytes is {other:?}, expected a u64")),
    };
    if size != c.bytes.len() as u64 {
        return Err(format!(
            "content_bytes {size}, file has {} bytes",
            c.bytes.len()
        ));
    }
    let md5 = format!("{:x}", md5::compute(&c.bytes));
    match cell("content_md5")? {
        AnyValue::Null => {}
        AnyValue::String(s) if s == md5 => {}
        AnyValue::StringOwned(s) if s.as_str() == md5 => {}
        other => return Err(format!("content_md5 {other:?}, expected {md5}")),
    }
    let content = match cell("content")? {
        AnyValue::Binary(b) => b.to_vec(),
        AnyValue::BinaryOwned(b) => b,
        AnyValue::Null => Vec::new(),
        other => return Err(format!("content is {other:?}, expected binary")),
    };
    if content.len() > MIB || !c.bytes.starts_with(&content) {
        return Err(format!(
            "content is not the file's first MiB at most ({} bytes)",
            content.len()
        ));
    }
    for name in ["source_file", "failed_checks"] {
        cell(name)?;
    }
    Ok(())
}

fn quarantine_cell(q: &DataFrame, name: &str) -> Result<AnyValue<'static>, String> {
    q.column(name)
        .and_then(|c| c.get(0))
        .map(|v| v.into_static())
        .map_err(|e| format!("quarantine column {name}: {e}"))
}

fn counts_add_up(metrics: &Value) -> Result<(), String> {
    let rows_in = u64_of(metrics, "rows_in")?;
    let rows_out = u64_of(metrics, "rows_out")?;
    let invalid = u64_of(metrics, "invalid_rows")?;
    if rows_in != rows_out + invalid {
        return Err(format!(
            "rows_in {rows_in} != rows_out {rows_out} + invalid_rows {invalid}"
        ));
    }
    Ok(())
}

fn readable_checks(
    p: &Pipeline,
    c: &Case,
    run: &Run,
    rows_in: Option<u64>,
    rows_out: Option<u64>,
) -> Result<(), String> {
    if run.code != 0 {
        return Err(format!(
            "exit {}, expected 0 (rows readable); error {:?}",
            run.code, run.metrics["error"]
        ));
    }
    let status = run.metrics["status"].as_str().unwrap_or_default();
    if !matches!(status, "validated" | "quarantined") {
        return Err(format!("status {status:?}"));
    }
    counts_add_up(&run.metrics)?;
    let got_in = u64_of(&run.metrics, "rows_in")?;
    let got_out = u64_of(&run.metrics, "rows_out")?;
    if rows_in.is_some_and(|n| n != got_in) || rows_out.is_some_and(|n| n != got_out) {
        return Err(format!(
            "rows_in {got_in}, rows_out {got_out}; expected {rows_in:?}, {rows_out:?} \
             (failed {})",
            run.metrics["failed"]
        ));
    }
    let valid = p.slice_path(&p.landing(), "valid-data", c.dataset);
    let in_slice = std::fs::File::open(&valid)
        .ok()
        .and_then(|f| ParquetReader::new(f).finish().ok())
        .map(|f| f.height() as u64);
    if in_slice != Some(got_out) {
        return Err(format!(
            "valid slice holds {in_slice:?} rows, metrics say {got_out}"
        ));
    }
    Ok(())
}

/// Runs every case, restoring the generated file after each, and fails
/// once with the list of every failing case.
fn run_all(p: &Pipeline, cases: Vec<Case>) {
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
        let path = p.raw_path(c.dataset, extension(c.dataset));
        let original = std::fs::read(&path).unwrap();
        if let Err(why) = run_case(p, c) {
            failures.push(format!("{} ({}): {why}", c.name, c.dataset));
        }
        std::fs::write(&path, original).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn generated() -> Pipeline {
    let p = Pipeline::new();
    p.generate_all();
    p
}

// ---------------------------------------------------------------- CSV

fn contact(i: u32) -> Vec<String> {
    [
        format!("0b5c7f0e-8a43-4b2a-9d1e-{i:012x}"),
        "Ada".into(),
        "Lovelace".into(),
        format!("ada{i}@example.com"),
        "Acme Labs".into(),
        "Internet".into(),
        "email".into(),
        "Engineer".into(),
        "France".into(),
        "true".into(),
        "2025-05-25T10:00:00".into(),
    ]
    .to_vec()
}

fn row(fields: &[String]) -> String {
    fields.join(",")
}

fn contact_with(i: u32, column: usize, value: &str) -> String {
    let mut fields = contact(i);
    fields[column] = value.to_string();
    row(&fields)
}

const COMPANY: usize = 4;
const EMAIL: usize = 3;
const FIRST_NAME: usize = 1;
const SIGNUP: usize = 10;

fn csv(rows: &[String]) -> Vec<u8> {
    let mut all = vec![CONTACTS_HEADER.to_string()];
    all.extend(rows.iter().cloned());
    lines(&all)
}

fn csv_cases(form_fills_parquet: &[u8]) -> Vec<Case> {
    let r = |i| row(&contact(i));
    let header = CONTACTS_HEADER.to_string();
    let mut truncated_row = r(1);
    truncated_row.truncate(30);
    vec![
        case(
            "csv_zero_bytes",
            "contacts",
            vec![],
            Expect::Rejected(&["empty"]),
        ),
        case(
            "csv_whitespace_only",
            "contacts",
            b"\n \r\n\t\n".to_vec(),
            Expect::Rejected(&["empty"]),
        ),
        case("csv_header_only", "contacts", csv(&[]), readable(0, 0)),
        case(
            "csv_truncated_mid_row",
            "contacts",
            format!("{header}\n{}\n{truncated_row}", r(0)).into_bytes(),
            readable(2, 1),
        ),
        case(
            "csv_truncated_inside_quotes",
            "contacts",
            format!(
                "{header}\n{}\n{}",
                r(0),
                contact_with(1, COMPANY, "\"Acme, unterminated")
            )
            .into_bytes(),
            Expect::Handled,
        ),
        case(
            "csv_quotes_delimiters_and_newlines_in_fields",
            "contacts",
            csv(&[
                contact_with(0, COMPANY, "\"Acme, \"\"Labs\"\"\nand Sons\r\nLtd\""),
                r(1),
            ]),
            readable(2, 2),
        ),
        case(
            "csv_quoted_header_names",
            "contacts",
            lines(&[
                CONTACTS_HEADER
                    .split(',')
                    .map(|h| format!("\"{h}\""))
                    .collect::<Vec<_>>()
                    .join(","),
                r(0),
            ]),
            readable(1, 1),
        ),
        case(
            "csv_semicolon_delimiter",
            "contacts",
            String::from_utf8(csv(&[r(0), r(1)]))
                .unwrap()
                .replace(',', ";")
                .into_bytes(),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "csv_tab_delimiter",
            "contacts",
            String::from_utf8(csv(&[r(0), r(1)]))
                .unwrap()
                .replace(',', "\t")
                .into_bytes(),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "csv_duplicated_header_line",
            "contacts",
            lines(&[header.clone(), r(0), header.clone(), r(1)]),
            readable(3, 2),
        ),
        case(
            "csv_duplicate_column_names",
            "contacts",
            lines(&[
                header.replace("company", "email"),
                contact_with(0, COMPANY, "other@example.com"),
            ]),
            Expect::Rejected(&["duplicate|columns do not match"]),
        ),
        case(
            "csv_byte_order_mark",
            "contacts",
            cat(&[b"\xEF\xBB\xBF", &csv(&[r(0)])]),
            readable(1, 1),
        ),
        case(
            "csv_utf16",
            "contacts",
            utf16le(&String::from_utf8(csv(&[r(0)])).unwrap()),
            Expect::Rejected(&[]),
        ),
        case(
            "csv_latin1_field",
            "contacts",
            cat(&[
                CONTACTS_HEADER.as_bytes(),
                b"\n",
                contact_with(0, FIRST_NAME, "Jos\u{1}").as_bytes(),
                b"\n",
            ])
            .into_iter()
            .map(|b| if b == 1 { 0xE9 } else { b })
            .collect(),
            Expect::Rejected(&["utf-8|utf8|unreadable"]),
        ),
        case(
            "csv_nul_byte_in_field",
            "contacts",
            csv(&[contact_with(0, FIRST_NAME, "A\0da"), r(1)]),
            readable_rows(2),
        ),
        case(
            "csv_crlf_line_endings",
            "contacts",
            String::from_utf8(csv(&[r(0), r(1)]))
                .unwrap()
                .replace('\n', "\r\n")
                .into_bytes(),
            readable(2, 2),
        ),
        case(
            "csv_empty_lines",
            "contacts",
            format!("{header}\n\n{}\n\n\n{}\n\n", r(0), r(1)).into_bytes(),
            Expect::Readable {
                rows_in: None,
                rows_out: Some(2),
            },
        ),
        case(
            "csv_row_with_extra_fields",
            "contacts",
            csv(&[r(0), format!("{},surplus,fields", r(1))]),
            Expect::Handled,
        ),
        case(
            "csv_header_case",
            "contacts",
            lines(&[header.replace("contact_id", "Contact_ID"), r(0)]),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "csv_header_whitespace",
            "contacts",
            lines(&[header.replace(",email", ", email"), r(0)]),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "csv_dates_in_other_formats",
            "contacts",
            csv(&[
                r(0),
                contact_with(1, SIGNUP, "25/05/2025 10:00:00"),
                contact_with(2, SIGNUP, "May 25 2025"),
                contact_with(3, SIGNUP, "1748167200"),
                contact_with(4, SIGNUP, "2025-05-25 10:00:00"),
            ]),
            readable(5, 2),
        ),
        case(
            "csv_dates_with_time_zones",
            "contacts",
            csv(&[
                r(0),
                contact_with(1, SIGNUP, "2025-05-25T10:00:00Z"),
                contact_with(2, SIGNUP, "2025-05-25T10:00:00+02:00"),
                contact_with(3, SIGNUP, "2025-05-25T23:30:00-05:00"),
            ]),
            readable_rows(4),
        ),
        case(
            "csv_over_the_file_size_limit",
            "contacts",
            csv(&[contact_with(0, COMPANY, &"x".repeat(10_000))]),
            Expect::Rejected(&["over the limit", "PIPELINE_MAX_FILE_BYTES"]),
        )
        .env("PIPELINE_MAX_FILE_BYTES", 4096),
        case(
            "csv_under_the_file_size_limit",
            "contacts",
            csv(&[r(0)]),
            readable(1, 1),
        )
        .env("PIPELINE_MAX_FILE_BYTES", 4096),
        case(
            "csv_huge_field",
            "contacts",
            csv(&[contact_with(0, COMPANY, &"x".repeat(2 * MIB)), r(1)]),
            readable(2, 2),
        ),
        case(
            "csv_binary_noise",
            "contacts",
            noise(4096, 7),
            Expect::Rejected(&[]),
        ),
        case(
            "csv_parquet_bytes",
            "contacts",
            form_fills_parquet.to_vec(),
            Expect::Rejected(&[]),
        ),
        case(
            "csv_over_tolerance",
            "contacts",
            csv(&[
                r(0),
                contact_with(1, EMAIL, "not-an-email"),
                contact_with(2, EMAIL, "nope"),
                contact_with(3, EMAIL, "@"),
            ]),
            Expect::OverTolerance { rows_in: 4 },
        )
        .ratio("0.05"),
    ]
}

#[test]
fn hostile_csv_files() {
    let p = generated();
    let parquet = std::fs::read(p.raw_path("form_fills", "parquet")).unwrap();
    run_all(&p, csv_cases(&parquet));
}

// ---------------------------------------------------------------- NDJSON

fn page(i: u32, title: &str) -> String {
    serde_json::json!({
        "page_id": format!("page_{i:03}"),
        "page_url": format!("https://www.example.com/p/{i}"),
        "page_title": title,
    })
    .to_string()
}

fn pages(titles: &[&str]) -> Vec<String> {
    (1..).zip(titles).map(|(i, title)| page(i, title)).collect()
}

fn three_pages() -> Vec<String> {
    pages(&["Home", "Pricing", "Blog"])
}

/// Three pages whose second title is `title`, byte for byte (not escaped
/// as a JSON serialiser would).
fn raw_title(title: &[u8]) -> Vec<u8> {
    let three = three_pages();
    cat(&[
        three[0].as_bytes(),
        b"\n{\"page_id\": \"page_002\", \"page_url\": \"u\", \"page_title\": \"",
        title,
        b"\"}\n",
        three[2].as_bytes(),
        b"\n",
    ])
}

fn deep(open: &str, depth: usize) -> String {
    open.repeat(depth)
}

/// The generated file with `edit` applied to the first `n` rows.
fn edit_rows(original: &[u8], n: usize, edit: impl Fn(usize, &mut Value)) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in String::from_utf8_lossy(original)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let mut value: Value = serde_json::from_str(line).unwrap();
        if i < n {
            edit(i, &mut value);
        }
        out.extend_from_slice(value.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn row_count(ndjson: &[u8]) -> u64 {
    String::from_utf8_lossy(ndjson)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

/// Cuts a text file in the middle of a line (not at a line end).
fn cut_mid_line(bytes: &[u8]) -> Vec<u8> {
    let mut end = bytes.len() / 2;
    while matches!(bytes[end - 1], b'\n' | b'}' | b'"' | b',') {
        end -= 1;
    }
    bytes[..end].to_vec()
}

fn ndjson_cases(p: &Pipeline) -> Vec<Case> {
    let read = |d: &str| std::fs::read(p.raw_path(d, "jsonl")).unwrap();
    let (campaigns, forms, activity) = (read("campaigns"), read("forms"), read("website_activity"));
    let activity_rows = row_count(&activity);
    let form_rows = row_count(&forms);
    let parquet = std::fs::read(p.raw_path("form_fills", "parquet")).unwrap();
    let three = three_pages();
    let mut broken = three.clone();
    broken[1] = r#"{"page_id": "page_002", "page_url": "#.into();
    let mut case_key = three.clone();
    case_key[1] = case_key[1].replace("\"page_id\"", "\"Page_ID\"");
    let pretty = String::from_utf8_lossy(&forms)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::to_string_pretty(&serde_json::from_str::<Value>(l).unwrap()).unwrap())
        .collect::<Vec<_>>();
    vec![
        case("ndjson_zero_bytes", "pages", vec![], Expect::Rejected(&["empty"])),
        case(
            "ndjson_top_level_array",
            "pages",
            format!("[{}]\n", three.join(",")).into_bytes(),
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_pretty_printed_objects",
            "forms",
            lines(&pretty),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "ndjson_broken_line_in_the_middle",
            "pages",
            lines(&broken),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "ndjson_truncated",
            "campaigns",
            cut_mid_line(&campaigns),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "ndjson_deep_array_nesting",
            "pages",
            deep("[", 200_000).into_bytes(),
            Expect::Rejected(&["nested deeper than 64"]),
        ),
        case(
            "ndjson_deep_object_nesting",
            "pages",
            format!(
                r#"{{"page_id": "page_001", "page_url": "u", "page_title": {}1{}}}"#,
                deep(r#"{"a": "#, 100_000),
                deep("}", 100_000)
            )
            .into_bytes(),
            Expect::Rejected(&["nested deeper than 64"]),
        ),
        case(
            "ndjson_nesting_65_levels",
            "pages",
            lines(&[
                three[0].clone(),
                format!(
                    r#"{{"page_id": "page_009", "page_url": "u", "page_title": {}"t"{}}}"#,
                    deep("[", 65),
                    deep("]", 65)
                ),
            ]),
            Expect::Rejected(&["nested deeper than 64"]),
        ),
        case(
            "ndjson_deep_unclosed_nesting_in_facts",
            "website_activity",
            format!(r#"{{"session_id": {}"#, deep("[", 200_000)).into_bytes(),
            Expect::Rejected(&["nested deeper than 64"]),
        ),
        case(
            "ndjson_brackets_inside_strings",
            "pages",
            lines(&pages(&[
                "Home",
                &deep("[", 100_000),
                &format!("{}{}", deep("{", 1000), deep("\\\"[", 1000)),
            ])),
            readable(3, 3),
        ),
        case(
            "ndjson_byte_order_mark",
            "pages",
            cat(&[b"\xEF\xBB\xBF", &lines(&three)]),
            readable(3, 3),
        ),
        case(
            "ndjson_crlf_line_endings",
            "pages",
            three.join("\r\n").into_bytes(),
            readable(3, 3),
        ),
        case(
            "ndjson_empty_lines",
            "pages",
            format!("\n{}\n\n\n{}\n  \n{}\n\n", three[0], three[1], three[2]).into_bytes(),
            readable(3, 3),
        ),
        case(
            "ndjson_raw_nul_byte_in_string",
            "pages",
            raw_title(b"Pri\0cing"),
            Expect::Handled,
        ),
        case(
            "ndjson_escaped_nul_in_string",
            "pages",
            lines(&pages(&["Home", "Pri\u{0}cing", "Blog"])),
            readable(3, 3),
        ),
        case(
            "ndjson_non_utf8",
            "pages",
            raw_title(b"Pri\xFF\xFEcing"),
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_utf16",
            "pages",
            utf16le(&three.join("\n")),
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_key_case",
            "pages",
            lines(&case_key),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "ndjson_key_whitespace",
            "pages",
            String::from_utf8(lines(&three))
                .unwrap()
                .replace("\"page_title\"", "\"page_title \"")
                .into_bytes(),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "ndjson_duplicate_keys",
            "pages",
            lines(&[
                three[0].clone(),
                r#"{"page_id": "page_002", "page_id": "page_003", "page_url": "u", "page_title": "t"}"#
                    .into(),
            ]),
            Expect::Handled,
        ),
        case(
            "ndjson_scalar_lines",
            "campaigns",
            b"1\n\"cmp_001\"\nnull\ntrue\n".to_vec(),
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_parquet_bytes",
            "forms",
            parquet,
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_noise_over_one_mib",
            "pages",
            noise(2 * MIB + 17, 11),
            Expect::Rejected(&[]),
        ),
        case(
            "ndjson_over_the_file_size_limit",
            "pages",
            lines(&pages(&["Home", &"x".repeat(10_000)])),
            Expect::Rejected(&["over the limit", "PIPELINE_MAX_FILE_BYTES"]),
        )
        .env("PIPELINE_MAX_FILE_BYTES", 4096),
        case(
            "ndjson_huge_field",
            "pages",
            lines(&pages(&["Home", &"x".repeat(2 * MIB), "Blog"])),
            readable(3, 3),
        ),
        case(
            "ndjson_mixed_value_types",
            "campaigns",
            lines(&[
                r#"{"campaign_id": "cmp_001", "campaign_name": "Spring"}"#.into(),
                r#"{"campaign_id": "cmp_002", "campaign_name": {"nested": [1, 2]}}"#.into(),
                r#"{"campaign_id": 3, "campaign_name": 4.5e300}"#.into(),
            ]),
            Expect::Handled,
        ),
        case(
            "ndjson_dates_in_other_formats",
            "website_activity",
            edit_rows(&activity, 4, |i, v| {
                v["event_date"] = ["25/05/2025", "2025/05/25", "20250525", "May 25, 2025"][i].into();
            }),
            readable_rows(activity_rows),
        ),
        case(
            "ndjson_dates_with_time_zones",
            "website_activity",
            edit_rows(&activity, 3, |i, v| {
                v["event_date"] = [
                    "2025-05-25T10:00:00+02:00",
                    "2025-05-25T23:30:00-05:00",
                    "2025-05-25Z",
                ][i]
                .into();
            }),
            readable_rows(activity_rows),
        ),
        case(
            "ndjson_date_as_number",
            "website_activity",
            edit_rows(&activity, 1, |_, v| v["event_date"] = 20_233.into()),
            Expect::Handled,
        ),
        case(
            "ndjson_keys_differing_only_in_case",
            "website_activity",
            edit_rows(&activity, 1, |_, v| {
                v["Event_Date"] = v["event_date"].clone();
            }),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "ndjson_over_tolerance",
            "forms",
            edit_rows(&forms, usize::MAX, |_, v| v["form_type"] = "bogus".into()),
            Expect::OverTolerance { rows_in: form_rows },
        )
        .ratio("0.05"),
    ]
}

#[test]
fn hostile_ndjson_files() {
    let p = generated();
    let cases = ndjson_cases(&p);
    run_all(&p, cases);
}

// ---------------------------------------------------------------- Parquet

/// A small Parquet file whose footer statistics hold a field of the wrong
/// thrift type: polars-parquet panics on it (`expect("thrift bool field")`).
/// Found by `formats::fuzz::parquet_mutated`.
const THRIFT_BOOL_PANIC_HEX: &str = "\
504152311504151e15304c15061500000028b52ffd200f7900000100000061010000006201000000631500151415262c\
15061510150615061c360028016318016100000028b52ffd200a51000002000000060102032400150c19350006101918\
026964150c160616820116a601265226081c3600280163180161000015041530153a4c15061500000028b52ffd2018a5\
000060010002000300000000000000020060e00160011500151415262c15061510150615061c36002808030000000000\
00001808010000000000000000000028b52ffd200a51000002000000060102032400150419350006101918016e150c16\
0616b00116cc0126cc0226f8011c3600280803000000000000001808010000000000000000001500152c153e2c150615\
00150615061c3602280800000000000004401808000000000000e03f00000028b52ffd2016b100000200000003050000\
00000000e03f0000000000000440150a1925000619180178150c1606167e16900126ac043c3602280800000000000004\
401808000000000000e03f00001504153a154c4c15041500000028b52ffd201de90000030000006f6e65120000007477\
6f2c202271756f746564220a6c696e651500151215242c15061510150615061c3602281274776f2c202271756f746564\
220a6c696e6518036f6e6500000028b52ffd2009490000020000000303010302150c193500061019180173150c160616\
c20116e601268007269a061c3602281274776f2c202271756f746564220a6c696e6518036f6e65000019110219180161\
191801631500191600001911021918080100000000000000191808030000000000000015001916000019110219180800\
0000000000e03f19180800000000000004401500191602001911021918036f6e6519181274776f2c202271756f746564\
220a6c696e65150019160200191c1652155c16000000191c16cc02157816000000191c16ac0415900116000000191c16\
8007158001160000001502195c4804726f6f74150800150c25021802696425004c1c0000001504250218016e00150a25\
0218017800150c250218017325004c1c0000001606191c194c26f8011c150c19350006101918026964150c1606168201\
16a601265226081c3600280163180161000016d80a151416f2081522002698041c150419350006101918016e150c1606\
16b00116cc0126cc0226f8011c36002808030000000000000018080100000000000000000016ec0a1516169409153e00\
26bc051c150a1925000619180178150c1606167e16900126ac043c3602280800000000000004401808000000000000e0\
3f130016820b151816d209153e0026e6081c150c193500061019180173150c160616c20116e601268007269a061c3602\
281274776f2c202271756f746564220a6c696e6518036f6e650000169a0b151816900a15480016f2041606260816e805\
140000191c180c4152524f573a736368656d6118dc022f2f2f2f2f2f7341414141454141414138762f2f2f7851414141\
4145414145414141414b414173414341414b414151412b502f2f2f777741414141494141674141414145414151414141\
4355414141415841414141437741414141454141414161502f2f2f786741414141514141414143414141414145594141\
41414141414161502f2f2f7745414141427a414141416a502f2f2f794141414141514141414143414141414145444141\
4141414141412b762f2f2f77494142674147414151414151414141486741414143342f2f2f2f4b414141414241414141\
4149414141414151494141414141414144302f2f2f2f51414141414145414141414941416b4142414149414145414141\
42754141414137502f2f2f79774141414167414141414741414141414559414141514142494142414151414245414341\
4141414177414141414141507a2f2f2f3845414151414167414141476c6b41413d3d001806506f6c617273194c1c0000\
1c00001c00001c000000d102000050415231";

/// `original` with the last row count its footer declares as `rows`
/// (a compact-thrift i64 field: header 0x16, zigzag varint) raised by one,
/// so that the footer and the column data disagree.
fn with_row_count_off_by_one(original: &[u8], rows: u64) -> Vec<u8> {
    let varint = |n: u64| {
        let (mut z, mut out) = (n << 1, vec![0x16]);
        loop {
            let byte = (z & 0x7F) as u8;
            z >>= 7;
            if z == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    };
    let (declared, wrong) = (varint(rows), varint(rows + 1));
    assert_eq!(declared.len(), wrong.len());
    let footer_len = u32::from_le_bytes(
        original[original.len() - 8..original.len() - 4]
            .try_into()
            .unwrap(),
    );
    let footer_start = original.len() - 8 - footer_len as usize;
    let at = original[footer_start..]
        .windows(declared.len())
        .rposition(|w| w == declared)
        .expect("the footer declares the row count")
        + footer_start;
    let mut out = original.to_vec();
    out[at..at + wrong.len()].copy_from_slice(&wrong);
    out
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn parquet_bytes(frame: &DataFrame, compression: ParquetCompression) -> Vec<u8> {
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(compression)
        .finish(&mut frame.clone())
        .unwrap();
    out
}

fn pq(frame: &DataFrame) -> Vec<u8> {
    parquet_bytes(frame, ParquetCompression::Zstd(None))
}

/// `frame` with column `name` replaced.
fn replaced(frame: &DataFrame, column: Series) -> DataFrame {
    let mut out = frame.clone();
    out.with_column(column.into_column()).unwrap();
    out
}

fn renamed(frame: &DataFrame, from: &str, to: &str) -> DataFrame {
    let mut out = frame.clone();
    out.rename(from, to.into()).unwrap();
    out
}

fn parquet_cases(original: &[u8], valid_rows: u64) -> Vec<Case> {
    let frame = ParquetReader::new(Cursor::new(original)).finish().unwrap();
    let n = frame.height();
    let rows = n as u64;
    let with_footer_length = |len: u32| {
        let mut b = original.to_vec();
        let at = b.len() - 8;
        b[at..at + 4].copy_from_slice(&len.to_le_bytes());
        b
    };
    let mut corrupted = original.to_vec();
    let third = corrupted.len() / 3;
    for b in &mut corrupted[third..third + 64] {
        *b ^= 0xA5;
    }
    let mut other_header_magic = original.to_vec();
    other_header_magic[..4].copy_from_slice(b"PAR2");
    let as_text = {
        let mut out = frame.clone();
        for column in frame.columns() {
            out.with_column(column.cast(&DataType::String).unwrap())
                .unwrap();
        }
        out
    };
    let fill_dates_other_format: Series = (0..n)
        .map(|i| Some(if i == 0 { "2025-05-25" } else { "25/05/2025" }))
        .collect::<StringChunked>()
        .with_name("fill_date".into())
        .into_series();
    let list_column = Series::new(
        "referrer_url".into(),
        vec![
            Series::new(
                PlSmallStr::EMPTY,
                ["https://a.example", "https://b.example"]
            );
            n
        ],
    );
    let struct_column = StructChunked::from_series(
        "user_agent".into(),
        n,
        [
            Series::new("browser".into(), vec!["firefox"; n]),
            Series::new("version".into(), vec![128i64; n]),
        ]
        .iter(),
    )
    .unwrap()
    .into_series();
    let timestamps_with_zone = frame
        .column("fill_date")
        .unwrap()
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap()
        .as_materialized_series()
        .clone();
    let out_of_range = Series::new("estimated_value".into(), vec![0.0f64; n]);
    let no_keys = Series::full_null("fill_id".into(), n, &DataType::String);
    let other_schema = df!("a" => [1i64, 2], "b" => ["x", "y"]).unwrap();
    let contacts_csv = format!("{CONTACTS_HEADER}\n{}\n", row(&contact(0))).into_bytes();
    vec![
        case(
            "parquet_zero_bytes",
            "form_fills",
            vec![],
            Expect::Rejected(&["empty"]),
        ),
        case(
            "parquet_truncated_half",
            "form_fills",
            original[..original.len() / 2].to_vec(),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_missing_trailing_magic",
            "form_fills",
            original[..original.len() - 4].to_vec(),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_magic_only",
            "form_fills",
            b"PAR1PAR1".to_vec(),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_footer_length_huge",
            "form_fills",
            with_footer_length(0xFFFF_FFF0),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_footer_length_zero",
            "form_fills",
            with_footer_length(0),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_csv_bytes",
            "form_fills",
            contacts_csv,
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_other_header_magic",
            "form_fills",
            other_header_magic,
            Expect::Handled,
        ),
        case(
            "parquet_corrupted_pages",
            "form_fills",
            corrupted,
            Expect::Handled,
        ),
        case(
            "parquet_noise_with_magic",
            "form_fills",
            cat(&[b"PAR1", &noise(8192, 3), b"PAR1"]),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_statistics_of_the_wrong_thrift_type",
            "form_fills",
            from_hex(THRIFT_BOOL_PANIC_HEX),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_footer_row_count_disagrees_with_columns",
            "form_fills",
            with_row_count_off_by_one(original, rows),
            Expect::Rejected(&["unreadable"]),
        ),
        case(
            "parquet_another_schema",
            "form_fills",
            pq(&other_schema),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "parquet_nested_list_column",
            "form_fills",
            pq(&replaced(&frame, list_column)),
            Expect::Rejected(&["referrer_url"]),
        ),
        case(
            "parquet_nested_struct_column",
            "form_fills",
            pq(&replaced(&frame, struct_column)),
            Expect::Rejected(&["user_agent"]),
        ),
        case(
            "parquet_over_the_decompressed_limit",
            "form_fills",
            original.to_vec(),
            Expect::Rejected(&["PIPELINE_MAX_DECOMPRESSED_BYTES"]),
        )
        .env("PIPELINE_MAX_DECOMPRESSED_BYTES", 1024),
        case(
            "parquet_over_the_file_size_limit",
            "form_fills",
            original.to_vec(),
            Expect::Rejected(&["over the limit", "PIPELINE_MAX_FILE_BYTES"]),
        )
        .env("PIPELINE_MAX_FILE_BYTES", 4096),
        case(
            "parquet_all_columns_as_text",
            "form_fills",
            pq(&as_text),
            readable(rows, valid_rows),
        ),
        case(
            "parquet_uncompressed",
            "form_fills",
            parquet_bytes(&frame, ParquetCompression::Uncompressed),
            readable(rows, valid_rows),
        ),
        case(
            "parquet_dates_in_another_format",
            "form_fills",
            pq(&replaced(&frame, fill_dates_other_format)),
            readable_rows(rows),
        ),
        case(
            "parquet_timestamps_with_time_zone",
            "form_fills",
            pq(&replaced(&frame, timestamps_with_zone)),
            Expect::Handled,
        ),
        case(
            "parquet_key_case",
            "form_fills",
            pq(&renamed(&frame, "fill_id", "Fill_ID")),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "parquet_key_whitespace",
            "form_fills",
            pq(&renamed(&frame, "fill_date", "fill_date ")),
            Expect::Rejected(&["columns do not match"]),
        ),
        case(
            "parquet_duplicated_rows",
            "form_fills",
            pq(&frame.vstack(&frame).unwrap()),
            Expect::Readable {
                rows_in: Some(2 * rows),
                rows_out: Some(valid_rows),
            },
        ),
        case(
            "parquet_no_rows",
            "form_fills",
            pq(&frame.clear()),
            readable(0, 0),
        ),
        case(
            "parquet_null_keys",
            "form_fills",
            pq(&replaced(&frame, no_keys)),
            readable(rows, 0),
        ),
        case(
            "parquet_over_tolerance",
            "form_fills",
            pq(&replaced(&frame, out_of_range)),
            Expect::OverTolerance { rows_in: rows },
        )
        .ratio("0.05"),
    ]
}

#[test]
fn hostile_parquet_files() {
    let p = generated();
    let original = std::fs::read(p.raw_path("form_fills", "parquet")).unwrap();
    // The generated file's own outcome, which re-encodings must keep.
    let baseline = p.ok(
        &[
            "validate",
            "form_fills",
            "--ds",
            DS,
            "--force",
            "--max-invalid-ratio",
            "1",
        ],
        0,
    );
    let valid_rows = baseline["rows_out"].as_u64().unwrap();
    run_all(&p, parquet_cases(&original, valid_rows));
}
