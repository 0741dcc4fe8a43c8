//! Data-quality checks as vectorised Polars expressions, derived from the
//! catalogue. Each check yields a boolean column that is true where a row
//! fails it; nothing loops over rows. `split` applies them to a file.

pub(crate) mod split;

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::NaiveDate;
use polars::prelude::*;

use crate::catalog::{Column as Spec, ColumnType, Dataset, Rule, TestConfig};
use crate::digest::md5_hex;

/// An address: an RFC 5322 dot-atom local part (letters, digits and
/// !#$%&'*+/=?^_`{|}~- in dot-separated runs, so `o'brien+tag`), `@`, and
/// a domain of dot-separated labels ending in a top-level domain.
pub(crate) const EMAIL_PATTERN: &str = concat!(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
);
/// The offset that may end an ISO 8601 timestamp: `Z`, `+02:00`, `-0530`, `+02`.
const UTC_OFFSET: &str = r"(?:[Zz]|([+-])(\d{2}):?(\d{2})?)$";
pub(crate) const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

const TRUE_WORDS: &[&str] = &["true", "t", "1", "yes", "y"];
const FALSE_WORDS: &[&str] = &["false", "f", "0", "no", "n"];

/// Name of the typed copy of a raw column while checks run.
pub(crate) fn typed(name: &str) -> String {
    format!("__typed_{name}")
}

/// Name of the failure flag of check `i`.
pub(crate) fn flag(i: usize) -> String {
    format!("__fail_{i}")
}

/// A check's outcome on one file, as dq_checks records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckResult {
    pub check: &'static str,
    pub column: String,
    pub rule: String,
    pub failed_rows: u64,
}

impl CheckResult {
    /// MD5 of the failure pattern: what failed, never how often or when.
    /// `subject` is the dataset, or `transform` for a data test.
    pub(crate) fn signature(&self, subject: &str) -> String {
        md5_hex(format!("{subject}|{}|{}|{}", self.check, self.column, self.rule).as_bytes())
    }
}

/// One check: what it is (for dq_checks and signatures) and its flag.
pub(crate) struct Check {
    pub check: &'static str,
    pub column: &'static str,
    pub rule: String,
    pub fails: Expr,
    /// Whether a failing row is quarantined, and when the file is rejected.
    pub config: TestConfig,
}

impl Check {
    pub(crate) fn result(&self, failed_rows: u64) -> CheckResult {
        CheckResult {
            check: self.check,
            column: self.column.to_string(),
            rule: self.rule.clone(),
            failed_rows,
        }
    }

    /// The label a quarantined row carries for this check.
    pub(crate) fn label(&self) -> String {
        format!("{}:{}", self.check, self.column)
    }
}

fn values_list(values: &[&str]) -> Expr {
    lit(Series::new(PlSmallStr::EMPTY, values)).implode(false)
}

/// Casts a raw column to its catalogue type. Values that cannot be cast
/// become null; the `type_cast` check reports them.
pub(crate) fn cast_to_type(spec: &Spec, raw_type: &DataType) -> Expr {
    let raw = col(spec.name);
    let text = || raw.clone().cast(DataType::String);
    match (spec.ty, raw_type) {
        (ColumnType::Text, DataType::String) => raw,
        (ColumnType::Text, _) => text(),
        (ColumnType::Bool, DataType::Boolean) => raw,
        (ColumnType::Bool, DataType::String) => {
            let word = raw.str().to_lowercase().str().strip_chars(lit(NULL));
            when(word.clone().is_in(values_list(TRUE_WORDS), false))
                .then(lit(true))
                .when(word.is_in(values_list(FALSE_WORDS), false))
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean))
        }
        (ColumnType::Bool, t) if t.is_integer() => raw.cast(DataType::Boolean),
        (ColumnType::Int, t) if t.is_float() => integral(raw),
        // Text (CSV, and NDJSON numbers read as text): "2.0" is an integer too.
        (ColumnType::Int, DataType::String) => raw
            .clone()
            .cast(DataType::Int64)
            .fill_null(integral(raw.cast(DataType::Float64))),
        (ColumnType::Int, t) if t.is_integer() => raw.cast(DataType::Int64),
        (ColumnType::Float, t) if t.is_primitive_numeric() || t.is_string() => {
            raw.cast(DataType::Float64)
        }
        (ColumnType::Date, DataType::Date) => raw,
        (ColumnType::Date, DataType::String) => raw.str().to_date(strptime("%Y-%m-%d")),
        (ColumnType::Timestamp, DataType::Datetime(_, _)) => {
            raw.cast(DataType::Datetime(TimeUnit::Microseconds, None))
        }
        (ColumnType::Timestamp, DataType::String) => iso_timestamp(raw),
        // Anything else (a list where text belongs, a number where a date
        // belongs) cannot be cast: every value fails.
        (ty, _) => lit(NULL).cast(data_type(ty)),
    }
}

/// A float as an integer where it is one: 2.0 is, 2.5 is not.
fn integral(float: Expr) -> Expr {
    when((float.clone() % lit(1.0)).eq(lit(0.0)))
        .then(float.cast(DataType::Int64))
        .otherwise(lit(NULL).cast(DataType::Int64))
}

/// ISO 8601 text as UTC: `T` or a space between date and time, optional
/// fractional seconds, and an optional offset (`Z`, `+02:00`, `-0530`); a
/// time without an offset is taken as UTC. The offset is cut off and the
/// local time parsed in one format (Polars' fast parser), then moved to
/// UTC by the offset, all vectorised.
fn iso_timestamp(raw: Expr) -> Expr {
    let text = raw
        .str()
        .strip_chars(lit(NULL))
        .str()
        .replace(lit(" "), lit("T"), true);
    let local = text.clone().str().replace(lit(UTC_OFFSET), lit(""), false);
    let local = to_timestamp(&local, "%Y-%m-%dT%H:%M:%S%.f");
    let part = |group| text.clone().str().extract(lit(UTC_OFFSET), group);
    let minutes = part(2).cast(DataType::Int64) * lit(60i64)
        + part(3).cast(DataType::Int64).fill_null(lit(0i64));
    let sign = when(part(1).eq(lit("-")))
        .then(lit(-1i64))
        .otherwise(lit(1i64));
    let offset_micros = (sign * minutes * lit(60_000_000i64)).fill_null(lit(0i64));
    (local.cast(DataType::Int64) - offset_micros)
        .cast(DataType::Datetime(TimeUnit::Microseconds, None))
}

fn strptime(format: &str) -> StrptimeOptions {
    StrptimeOptions {
        format: Some(format.into()),
        strict: false,
        exact: true,
        cache: false,
    }
}

fn to_timestamp(raw: &Expr, format: &str) -> Expr {
    raw.clone().str().to_datetime(
        Some(TimeUnit::Microseconds),
        None,
        strptime(format),
        lit("raise"),
    )
}

/// `catalog::normalize`, vectorised.
fn normalized_text(value: Expr) -> Expr {
    value
        .str()
        .to_lowercase()
        .str()
        .strip_chars(lit(NULL))
        .str()
        .replace_all(lit(r"[\s_-]+"), lit("_"), false)
        .str()
        .strip_chars(lit("_"))
}

/// Keys held as 128-bit hashes, so that the set grows by 16 bytes a key
/// whatever the keys' length (two keys colliding is a 2^-128 chance): the
/// memory of a unique or foreign-key check grows with the keys, not with
/// the file.
#[derive(Default)]
pub(crate) struct KeySet(HashSet<u128, BuildHasherDefault<PrehashedKey>>);

impl KeySet {
    pub(crate) fn with_capacity(keys: usize) -> Self {
        Self(HashSet::with_capacity_and_hasher(keys, Default::default()))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds the column's non-null values.
    pub(crate) fn extend(&mut self, column: &Column) -> PolarsResult<()> {
        let text = column.cast(&DataType::String)?;
        self.0.extend(text.str()?.iter().flatten().map(key_hash));
        Ok(())
    }

    /// True where a value occurs for the first time since the set was made
    /// (and for nulls), like Polars' `is_first_distinct` across batches.
    pub(crate) fn first_occurrences(&mut self, column: &Column) -> PolarsResult<BooleanChunked> {
        let text = column.cast(&DataType::String)?;
        let first = text
            .str()?
            .iter()
            .map(|v| v.is_none_or(|v| self.0.insert(key_hash(v))));
        Ok(BooleanChunked::from_iter_values(
            column.name().clone(),
            first,
        ))
    }

    /// True where a value is in the set (and for nulls).
    pub(crate) fn contains(&self, column: &Column) -> PolarsResult<BooleanChunked> {
        let text = column.cast(&DataType::String)?;
        let known = text
            .str()?
            .iter()
            .map(|v| v.is_none_or(|v| self.0.contains(&key_hash(v))));
        Ok(BooleanChunked::from_iter_values(
            column.name().clone(),
            known,
        ))
    }
}

fn key_hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

/// The hasher of a `KeySet`: its keys are hashes already.
#[derive(Default)]
pub(crate) struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

/// Name of the column flagging a key seen in an earlier row.
pub(crate) fn duplicate(name: &str) -> String {
    format!("__duplicate_{name}")
}

/// Name of the column flagging a value the referenced keys lack.
pub(crate) fn unreferenced(name: &str) -> String {
    format!("__unreferenced_{name}")
}

pub(crate) fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::String,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Date => DataType::Date,
        ColumnType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, None),
    }
}

/// Where the calendar day `ds` of `tz` starts and ends, as microseconds
/// since the epoch in UTC. A midnight that does not exist (a DST gap)
/// starts the day at the first instant after it.
fn local_day_in_utc_micros(ds: NaiveDate, tz: chrono_tz::Tz) -> (i64, i64) {
    use chrono::TimeZone;
    let start = |day: NaiveDate| {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        let local = tz.from_local_datetime(&midnight);
        let instant = local
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map_or(midnight.and_utc(), |t| t.with_timezone(&chrono::Utc));
        instant.timestamp_micros()
    };
    (start(ds), start(ds.succ_opt().unwrap_or(ds)))
}

/// The name a rule's check goes by in the metrics, dq_checks and the
/// quarantine labels.
pub(crate) fn check_name(rule: Rule) -> &'static str {
    match rule {
        Rule::NotNull => "not_null",
        Rule::Unique => "unique",
        Rule::Email => "email_format",
        Rule::Uuid => "uuid_format",
        Rule::Pattern(_) => "pattern",
        Rule::Range { .. } => "range",
        Rule::AcceptedValues { .. } => "accepted_values",
        Rule::References { .. } => "foreign_key",
        Rule::TrueExactlyWhen { .. } => "consistency",
    }
}

/// Every check for a dataset, over raw columns, their `typed` copies, and
/// the `duplicate` and `unreferenced` flags the validator computes with its
/// key sets.
pub(crate) fn plan(dataset: Dataset, ds: NaiveDate) -> Vec<Check> {
    let mut checks = Vec::new();
    for spec in dataset.columns() {
        let raw = col(spec.name);
        let value = col(typed(spec.name));
        let present = value.clone().is_not_null();
        // A comparison with null is null: it does not fail the check.
        let mut add = |check: &'static str, rule: String, fails: Expr, config: TestConfig| {
            checks.push(Check {
                check,
                column: spec.name,
                rule,
                fails: fails.fill_null(lit(false)),
                config,
            })
        };
        add(
            "type_cast",
            format!("castable to {:?}", spec.ty),
            raw.clone().is_not_null().and(value.clone().is_null()),
            TestConfig::default(),
        );
        if let Some(test) = spec.test(Rule::NotNull) {
            add(
                check_name(test.rule),
                "not null".into(),
                raw.is_null(),
                test.config,
            );
        }
        if let Some(test) = spec.test(Rule::Unique) {
            add(
                check_name(test.rule),
                "unique key".into(),
                present.clone().and(col(duplicate(spec.name))),
                test.config,
            );
        }
        if Some(spec.name) == dataset.date_column() {
            let tz = dataset.timezone();
            let (stale, rule) = match spec.ty {
                // The ds's calendar day in the dataset's time zone, as UTC
                // instants (a DST day is 23 or 25 hours long).
                ColumnType::Timestamp => {
                    let (start, end) = local_day_in_utc_micros(ds, tz);
                    let micros = value.clone().cast(DataType::Int64);
                    let stale = micros.clone().lt(lit(start)).or(micros.gt_eq(lit(end)));
                    let rule = match tz {
                        chrono_tz::UTC => "date equals ds".to_string(),
                        tz => format!("date in {tz} equals ds"),
                    };
                    (stale, rule)
                }
                _ => (value.clone().neq(lit(ds)), "date equals ds".to_string()),
            };
            add("freshness", rule, stale, TestConfig::default());
        }
        for test in spec.tests {
            let (rule_text, ok) = match test.rule {
                // Checked above, in their places before freshness.
                Rule::NotNull | Rule::Unique => continue,
                Rule::Email => (
                    "email".to_string(),
                    value.clone().str().contains(lit(EMAIL_PATTERN), true),
                ),
                Rule::Uuid => (
                    "uuid".to_string(),
                    value.clone().str().contains(lit(UUID_PATTERN), true),
                ),
                Rule::Pattern(pattern) => (
                    format!("matches {pattern}"),
                    value.clone().str().contains(lit(pattern), true),
                ),
                Rule::Range { min, max } => {
                    let mut ok = lit(true);
                    if let Some(min) = min {
                        ok = ok.and(value.clone().cast(DataType::Float64).gt_eq(lit(min)));
                    }
                    if let Some(max) = max {
                        ok = ok.and(value.clone().cast(DataType::Float64).lt_eq(lit(max)));
                    }
                    let rule = match (min, max) {
                        (Some(min), Some(max)) => format!("between {min} and {max}"),
                        (Some(min), None) => format!(">= {min}"),
                        (None, Some(max)) => format!("<= {max}"),
                        (None, None) => "any".into(),
                    };
                    (rule, ok)
                }
                Rule::AcceptedValues { values, normalized } => {
                    let compared = match normalized {
                        true => normalized_text(value.clone()),
                        false => value.clone(),
                    };
                    let ignoring = if normalized {
                        " (ignoring case and spacing)"
                    } else {
                        ""
                    };
                    (
                        format!("one of {}{ignoring}", values.join(",")),
                        compared.is_in(values_list(values), false),
                    )
                }
                Rule::References {
                    dataset: target,
                    field,
                } => (
                    format!("references {target}.{field}"),
                    col(unreferenced(spec.name)).not(),
                ),
                Rule::TrueExactlyWhen { column, value: v } => (
                    format!("true exactly when {column} = {v}"),
                    value.clone().eq(col(typed(column)).eq(lit(v))),
                ),
            };
            // A null fails not_null (or nothing, when nullable), never a rule.
            add(
                check_name(test.rule),
                rule_text,
                present.clone().and(ok.not()),
                test.config,
            );
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ds() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 5, 25).unwrap()
    }

    /// Runs every check of `dataset` on `raw`, as validate does, and
    /// returns the failing rows by check label.
    fn failures(
        dataset: Dataset,
        raw: DataFrame,
        refs: &HashMap<&'static str, Series>,
    ) -> HashMap<String, u64> {
        let references: split::References = refs
            .iter()
            .map(|(name, keys)| {
                let mut set = KeySet::default();
                set.extend(&keys.clone().into_column()).unwrap();
                (*name, set)
            })
            .collect();
        let mut validator = split::Validator::new(dataset, ds(), &references, 0);
        validator.check(raw).unwrap();
        validator
            .checks()
            .iter()
            .enumerate()
            .map(|(i, c)| (c.label(), validator.failed_rows(i)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// A raw all-text frame of `dataset` with one row per array.
    fn frame<const N: usize>(dataset: Dataset, rows: Vec<[Option<&str>; N]>) -> DataFrame {
        let cols = dataset
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| Column::new(c.name.into(), rows.iter().map(|r| r[i]).collect::<Vec<_>>()))
            .collect();
        DataFrame::new(rows.len(), cols).unwrap()
    }

    const GOOD_UUID: &str = "0b5c7f0e-8a43-4b2a-9d1e-0c6f3f5a8e21";
    const OTHER_UUID: &str = "7d1e2a4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b";

    fn contact<'a>(
        id: Option<&'a str>,
        email: &'a str,
        lead: &'a str,
        opted: &'a str,
        signup: &'a str,
    ) -> [Option<&'a str>; 11] {
        [
            id,
            Some("Ada"),
            Some("Lovelace"),
            Some(email),
            Some("Acme Labs"),
            Some("Internet"),
            Some(lead),
            Some("Senior Data Engineer"),
            Some("France"),
            Some(opted),
            Some(signup),
        ]
    }

    #[test]
    fn clean_contacts_pass_every_check() {
        let raw = frame(
            Dataset::named("contacts"),
            vec![
                contact(
                    Some(GOOD_UUID),
                    "ada@example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some(OTHER_UUID),
                    "b.c+x@mail.example.org",
                    "webinar",
                    "0",
                    "2025-05-25 23:59:59",
                ),
            ],
        );
        assert!(failures(Dataset::named("contacts"), raw, &HashMap::new()).is_empty());
    }

    /// Contacts as CRM exports and the source document write them.
    #[test]
    fn real_world_contacts_pass() {
        let ids = [
            "0b5c7f0e-8a43-4b2a-9d1e-0c6f3f5a8e21",
            "7d1e2a4b-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
            "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
            "2b3c4d5e-6f7a-4b9c-8d1e-2f3a4b5c6d7e",
        ];
        let raw = frame(
            Dataset::named("contacts"),
            vec![
                contact(
                    Some(ids[0]),
                    "o'brien+tag@sub.example.co.uk",
                    "Organic Search",
                    "true",
                    "2025-05-25T05:30:08Z",
                ),
                contact(
                    Some(ids[1]),
                    "jane.doe@example.com",
                    "Paid Social",
                    "false",
                    "2025-05-25T22:22:55+02:00",
                ),
                contact(
                    Some(ids[2]),
                    "x_y-z@example.io",
                    " web ",
                    "1",
                    "2025-05-25T23:31:05.123",
                ),
                contact(
                    Some(ids[3]),
                    "a!b#c@example.org",
                    "Event",
                    "no",
                    "2025-05-25 10:00:00-0530",
                ),
            ],
        );
        let got = failures(Dataset::named("contacts"), raw, &HashMap::new());
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn freshness_is_judged_on_the_calendar_day_of_the_time_zone() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let (start, end) = local_day_in_utc_micros(ds(), berlin);
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        // Summer time: the Berlin day 2025-05-25 is 22:00 to 22:00 UTC.
        assert_eq!(start, at("2025-05-24T22:00:00Z"));
        assert_eq!(end, at("2025-05-25T22:00:00Z"));
        let utc = local_day_in_utc_micros(ds(), chrono_tz::UTC);
        assert_eq!(
            utc,
            (at("2025-05-25T00:00:00Z"), at("2025-05-26T00:00:00Z"))
        );
        // The day clocks go forward is 23 hours long.
        let spring = NaiveDate::from_ymd_opt(2025, 3, 30).unwrap();
        let (start, end) = local_day_in_utc_micros(spring, berlin);
        assert_eq!(end - start, 23 * 3_600_000_000);
    }

    #[test]
    fn iso_timestamps_are_normalised_to_utc() {
        let raw = df!("t" => [
            "2025-05-25T22:22:55+02:00",
            "2025-05-25T05:30:08Z",
            "2025-05-25 23:31:05.123",
            "2025-05-24T20:00:00-0530",
            "2025-05-25T01:00:00+02",
            "not a time",
        ])
        .unwrap();
        let spec = Spec {
            name: "t",
            ty: ColumnType::Timestamp,
            nullable: true,
            tests: &[],
        };
        let out = raw
            .lazy()
            .select([cast_to_type(&spec, &DataType::String)
                .dt()
                .strftime("%Y-%m-%dT%H:%M:%S%.3f")])
            .collect()
            .unwrap();
        let got: Vec<Option<&str>> = out.column("t").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            got,
            [
                Some("2025-05-25T20:22:55.000"),
                Some("2025-05-25T05:30:08.000"),
                Some("2025-05-25T23:31:05.123"),
                Some("2025-05-25T01:30:00.000"),
                Some("2025-05-24T23:00:00.000"),
                None,
            ]
        );
    }

    #[test]
    fn email_format_follows_rfc_5322_dot_atoms() {
        let good = [
            "o'brien+tag@sub.example.co.uk",
            "a.b-c_d@x-y.io",
            "{x}|~@example.museum",
        ];
        let bad = [
            "a..b@x.com",
            ".a@x.com",
            "a.@x.com",
            "a@b",
            "a@-x.com",
            "a b@x.com",
            "ab.example.com",
            "a@@x.com",
        ];
        let raw = df!("e" => [&good[..], &bad[..]].concat()).unwrap();
        let out = raw
            .lazy()
            .select([col("e").str().contains(lit(EMAIL_PATTERN), true)])
            .collect()
            .unwrap();
        let matched: Vec<Option<bool>> = out.column("e").unwrap().bool().unwrap().iter().collect();
        let expected: Vec<Option<bool>> = good
            .iter()
            .map(|_| Some(true))
            .chain(bad.iter().map(|_| Some(false)))
            .collect();
        assert_eq!(matched, expected);
    }

    #[test]
    fn normalised_accepted_values_ignore_case_and_spacing() {
        let raw = df!("v" => [" Organic  Search ", "organic-search", "ORGANIC_SEARCH", "organic searching"]).unwrap();
        let out = raw
            .lazy()
            .select([normalized_text(col("v"))])
            .collect()
            .unwrap();
        let got: Vec<Option<&str>> = out.column("v").unwrap().str().unwrap().iter().collect();
        let expected: Vec<String> = [
            " Organic  Search ",
            "organic-search",
            "ORGANIC_SEARCH",
            "organic searching",
        ]
        .iter()
        .map(|v| crate::catalog::normalize(v))
        .collect();
        assert_eq!(
            got,
            expected
                .iter()
                .map(|s| Some(s.as_str()))
                .collect::<Vec<_>>()
        );
        assert_eq!(expected[0], "organic_search");
    }

    #[test]
    fn each_contact_defect_fails_exactly_its_check() {
        let raw = frame(
            Dataset::named("contacts"),
            vec![
                contact(
                    Some(GOOD_UUID),
                    "ada@example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    None,
                    "ada@example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some(GOOD_UUID),
                    "ada@example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some("tmp-12345678"),
                    "ada@example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some(OTHER_UUID),
                    "ada.example.com",
                    "email",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some("11111111-2222-4333-8444-555555555555"),
                    "a@b.co",
                    "email",
                    "true",
                    "2025-05-20T10:00:00",
                ),
                contact(
                    Some("21111111-2222-4333-8444-555555555555"),
                    "a@b.co",
                    "fax",
                    "true",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some("31111111-2222-4333-8444-555555555555"),
                    "a@b.co",
                    "email",
                    "maybe",
                    "2025-05-25T10:00:00",
                ),
                contact(
                    Some("41111111-2222-4333-8444-555555555555"),
                    "a@b.co",
                    "email",
                    "no",
                    "yesterday",
                ),
            ],
        );
        let got = failures(Dataset::named("contacts"), raw, &HashMap::new());
        let expected: HashMap<String, u64> = [
            ("not_null:contact_id", 1),
            ("unique:contact_id", 1),
            ("uuid_format:contact_id", 1),
            ("email_format:email", 1),
            ("freshness:signup_date", 1),
            ("accepted_values:lead_source", 1),
            ("type_cast:opted_in", 1),
            ("type_cast:signup_date", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, expected);
    }

    fn session<'a>(
        id: &'a str,
        contact: Option<&'a str>,
        page: &'a str,
        duration: &'a str,
        viewed: &'a str,
        bounce: &'a str,
    ) -> [Option<&'a str>; 12] {
        [
            Some(id),
            contact,
            Some("cmp_001"),
            Some(page),
            Some("https://www.example.com/x"),
            Some("X"),
            Some("2025-05-25"),
            Some("page_view"),
            Some(duration),
            Some(viewed),
            Some(bounce),
            None,
        ]
    }

    #[test]
    fn ranges_foreign_keys_and_consistency() {
        let refs: HashMap<&'static str, Series> = [
            ("contacts", Series::new("k".into(), [GOOD_UUID])),
            ("campaigns", Series::new("k".into(), ["cmp_001"])),
            ("pages", Series::new("k".into(), ["page_001"])),
        ]
        .into_iter()
        .collect();
        let ids: Vec<String> = (0..6)
            .map(|i| format!("{i}1111111-2222-4333-8444-555555555555"))
            .collect();
        let raw = frame(
            Dataset::named("website_activity"),
            vec![
                session(&ids[0], Some(GOOD_UUID), "page_001", "12.5", "1", "true"),
                session(&ids[1], None, "page_001", "30", "3", "false"),
                session(&ids[2], Some(OTHER_UUID), "page_001", "30", "3", "false"),
                session(&ids[3], None, "page_404", "30", "3", "false"),
                session(&ids[4], None, "page_001", "-1", "0", "false"),
                session(&ids[5], None, "page_001", "5", "2", "true"),
            ],
        );
        let got = failures(Dataset::named("website_activity"), raw, &refs);
        let expected: HashMap<String, u64> = [
            ("foreign_key:contact_id", 1),
            ("foreign_key:page_id", 1),
            ("range:session_duration", 1),
            ("range:pages_viewed", 1),
            ("consistency:bounce", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn only_repeats_of_a_value_are_not_first_occurrences_across_batches() {
        let mut keys = KeySet::with_capacity(4);
        let first = Column::new("k".into(), [Some("a"), None, Some("b")]);
        let second = Column::new(
            "k".into(),
            [Some("a"), None, Some("b"), Some("c"), Some("c")],
        );
        let flags = |b: BooleanChunked| b.iter().map(Option::unwrap).collect::<Vec<_>>();
        assert_eq!(flags(keys.first_occurrences(&first).unwrap()), [true; 3]);
        assert_eq!(
            flags(keys.first_occurrences(&second).unwrap()),
            [false, true, false, true, false]
        );
        assert_eq!(keys.len(), 3);
        let known = keys.contains(&Column::new("k".into(), [Some("c"), Some("z"), None]));
        assert_eq!(flags(known.unwrap()), [true, false, true]);
    }

    #[test]
    fn integral_floats_cast_to_int_and_fractions_do_not() {
        let spec = Dataset::named("website_activity")
            .column("pages_viewed")
            .unwrap();
        let frame = df!("pages_viewed" => [2.0f64, 2.5]).unwrap();
        let out = frame
            .lazy()
            .select([cast_to_type(spec, &DataType::Float64)])
            .collect()
            .unwrap();
        let v: Vec<Option<i64>> = out
            .column("pages_viewed")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(v, vec![Some(2), None]);
    }
}
