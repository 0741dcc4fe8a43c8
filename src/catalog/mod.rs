//! The dataset catalogue: the one place that says what each dataset is,
//! built from the data contracts (sql/models/sources/raw.yml, embedded in the
//! binary; `PIPELINE_CONTRACTS` replaces or adds tables at run time). Every
//! task reads names, formats, keys, columns, types and rules from here, and
//! `describe` publishes them.

mod contract;

use std::fmt;
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::Deserialize;

/// The contracts built into the binary.
pub const EMBEDDED: (&str, &str) = (
    "sql/models/sources/raw.yml",
    include_str!("../../sql/models/sources/raw.yml"),
);

/// On-disk format of a raw landing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Format {
    #[serde(rename = "jsonl", alias = "ndjson")]
    NdJson,
    #[serde(rename = "csv")]
    Csv,
    #[serde(rename = "parquet")]
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::NdJson => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Logical column type (`data_type`); validate casts raw values to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ColumnType {
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "boolean")]
    Bool,
    #[serde(rename = "integer")]
    Int,
    #[serde(rename = "float")]
    Float,
    #[serde(rename = "date")]
    Date,
    #[serde(rename = "timestamp")]
    Timestamp,
}

/// A value rule checked on the non-null values of a column (`NotNull` on
/// its nulls).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    NotNull,
    /// No value occurs twice.
    Unique,
    /// `local@domain.tld`.
    Email,
    /// Canonical 8-4-4-4-12 hexadecimal UUID.
    Uuid,
    /// Matches a regular expression (Rust's `regex` syntax).
    Pattern(&'static str),
    /// Inclusive numeric range; `None` leaves that side open.
    Range {
        min: Option<f64>,
        max: Option<f64>,
    },
    /// One of a fixed list of values; with `normalized`, compared after
    /// `normalize` (so 'Organic Search' is `organic_search`).
    AcceptedValues {
        values: &'static [&'static str],
        normalized: bool,
    },
    /// Must exist as `field` of the named dataset for the same ds.
    References {
        dataset: &'static str,
        field: &'static str,
    },
    /// A boolean that is true exactly when the named integer column equals `value`.
    TrueExactlyWhen {
        column: &'static str,
        value: i64,
    },
}

/// The expected change in a dataset's rows against the previous ds
/// (`meta.volume`): `min_ratio: 1` is "at least yesterday's".
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    #[serde(default)]
    pub min_ratio: Option<f64>,
    #[serde(default)]
    pub max_ratio: Option<f64>,
    /// `error` rejects a file outside the band; `warn` (the default) reports it.
    #[serde(default = "Volume::default_severity")]
    pub severity: Severity,
}

impl Volume {
    fn default_severity() -> Severity {
        Severity::Warn
    }

    /// Whether `rows` is inside the band around `previous`.
    pub fn accepts(&self, rows: u64, previous: u64) -> bool {
        let ratio = rows as f64 / previous.max(1) as f64;
        self.min_ratio.is_none_or(|min| ratio >= min)
            && self.max_ratio.is_none_or(|max| ratio <= max)
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min_ratio, self.max_ratio) {
            (Some(min), Some(max)) => write!(f, "{min}x to {max}x of the previous ds"),
            (Some(min), None) => write!(f, "at least {min}x of the previous ds"),
            (None, Some(max)) => write!(f, "at most {max}x of the previous ds"),
            (None, None) => f.write_str("any change from the previous ds"),
        }
    }
}

/// A rule and what its failures mean (dbt's test `config`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Test {
    pub rule: Rule,
    pub config: TestConfig,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TestConfig {
    pub severity: Severity,
    /// When the failing rows meet it, the check is reported as a warning
    /// (default for `warn` severity: any failing row).
    pub warn_if: Option<Threshold>,
    /// When the failing rows meet it, the whole file is rejected (65);
    /// without one, `--max-invalid-ratio` decides for the file as a whole.
    pub error_if: Option<Threshold>,
}

/// `error` quarantines a failing row; `warn` reports it and keeps it valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warn,
    #[default]
    Error,
}

impl Severity {
    pub fn is_error(&self) -> bool {
        *self == Severity::Error
    }
}

/// dbt's `warn_if`/`error_if` condition on a check's failing rows, as a
/// count (`> 10`) or a share of the file's rows (`>= 0.1%`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub comparison: Comparison,
    pub value: f64,
    pub percent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

/// The comparison operators of a threshold, longest first.
const COMPARISONS: [(&str, Comparison); 8] = [
    (">=", Comparison::GreaterOrEqual),
    ("<=", Comparison::LessOrEqual),
    ("!=", Comparison::NotEqual),
    ("<>", Comparison::NotEqual),
    ("==", Comparison::Equal),
    (">", Comparison::Greater),
    ("<", Comparison::Less),
    ("=", Comparison::Equal),
];

impl Threshold {
    /// `> 10`, `>=0.1%`, `!= 0`, `= 5` (dbt's syntax, with `%` for a share).
    pub fn parse(text: &str) -> Option<Threshold> {
        let text = text.trim();
        let (comparison, rest) = COMPARISONS
            .into_iter()
            .find_map(|(op, c)| text.strip_prefix(op).map(|rest| (c, rest)))?;
        let rest = rest.trim();
        let (number, percent) = match rest.strip_suffix('%') {
            Some(number) => (number.trim(), true),
            None => (rest, false),
        };
        let value = number
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)?;
        Some(Threshold {
            comparison,
            value,
            percent,
        })
    }

    /// Whether `failed` of `rows` rows meet the condition.
    pub fn met(&self, failed: u64, rows: u64) -> bool {
        let measured = match self.percent {
            true if rows == 0 => 0.0,
            true => failed as f64 * 100.0 / rows as f64,
            false => failed as f64,
        };
        match self.comparison {
            Comparison::Greater => measured > self.value,
            Comparison::GreaterOrEqual => measured >= self.value,
            Comparison::Less => measured < self.value,
            Comparison::LessOrEqual => measured <= self.value,
            Comparison::Equal => measured == self.value,
            Comparison::NotEqual => measured != self.value,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = COMPARISONS
            .iter()
            .find(|(_, c)| *c == self.comparison)
            .map_or("", |(op, _)| op);
        let unit = if self.percent { "%" } else { "" };
        write!(f, "{op} {}{unit}", self.value)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// No `not_null` test.
    pub nullable: bool,
    pub tests: &'static [Test],
}

/// Whether `name` may name a dataset or a column: lower-case letters,
/// digits and `_`, starting with a letter. Names become paths in the
/// landing area and the lake and unquoted identifiers in the warehouse.
pub fn is_plain_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A value as normalised accepted values compare it: lower case, trimmed,
/// each run of spaces, hyphens and underscores one `_`.
pub fn normalize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value
        .trim()
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&word.to_lowercase());
    }
    out
}

impl Column {
    /// The column's test of `rule`, if it has one.
    pub fn test(&self, rule: Rule) -> Option<&'static Test> {
        self.tests.iter().find(|t| t.rule == rule)
    }

    pub fn is_unique(&self) -> bool {
        self.test(Rule::Unique).is_some()
    }
}

/// One dataset of the catalogue. A handle: cheap to copy, compared by its
/// place in the catalogue (the order the DAG generates them in).
#[derive(Clone, Copy)]
pub struct Dataset(&'static Spec);

struct Spec {
    index: usize,
    name: &'static str,
    description: &'static str,
    format: Format,
    key: &'static str,
    date_column: Option<&'static str>,
    volume: Option<Volume>,
    timezone: chrono_tz::Tz,
    columns: &'static [Column],
    references: OnceLock<Vec<Dataset>>,
}

/// Every dataset the contracts declare.
pub struct Catalogue {
    datasets: Vec<Dataset>,
}

impl Catalogue {
    /// The embedded contracts alone.
    pub fn embedded() -> &'static Catalogue {
        static EMBEDDED_CATALOGUE: OnceLock<&'static Catalogue> = OnceLock::new();
        EMBEDDED_CATALOGUE.get_or_init(|| {
            Catalogue::load(&[]).expect("the embedded contracts are valid (tested)")
        })
    }

    /// The embedded contracts, then each of `files` (origin, text) in
    /// order: a table of the same name replaces the earlier one, a new one
    /// is added. Errors name the file, the line and the field.
    pub fn load(files: &[(String, String)]) -> Result<&'static Catalogue, String> {
        let mut tables: Vec<contract::TableSpec> = contract::parse(EMBEDDED.0, EMBEDDED.1)?;
        for (origin, text) in files {
            for table in contract::parse(origin, text)? {
                match tables.iter_mut().find(|t| t.name == table.name) {
                    Some(earlier) => *earlier = table,
                    None => tables.push(table),
                }
            }
        }
        let datasets: Vec<Dataset> = tables
            .into_iter()
            .enumerate()
            .map(|(index, t)| {
                Dataset(Box::leak(Box::new(Spec {
                    index,
                    name: Box::leak(t.name.into_boxed_str()),
                    description: Box::leak(t.description.into_boxed_str()),
                    format: t.format,
                    key: Box::leak(t.key.into_boxed_str()),
                    date_column: t.date_column.map(|d| &*Box::leak(d.into_boxed_str())),
                    volume: t.volume,
                    timezone: t.timezone,
                    columns: Vec::leak(t.columns),
                    references: OnceLock::new(),
                })))
            })
            .collect();
        let catalogue = Catalogue { datasets };
        for dataset in &catalogue.datasets {
            let references = catalogue.resolve_references(*dataset)?;
            let _ = dataset.0.references.set(references);
        }
        Ok(Box::leak(Box::new(catalogue)))
    }

    fn resolve_references(&self, dataset: Dataset) -> Result<Vec<Dataset>, String> {
        let mut out = Vec::new();
        for column in dataset.columns() {
            for test in column.tests {
                if let Rule::References {
                    dataset: name,
                    field,
                } = test.rule
                {
                    let target = self.get(name).ok_or_else(|| {
                        format!(
                            "table {dataset}, column {}: relationships to unknown table {name}",
                            column.name
                        )
                    })?;
                    if target.key() != field {
                        return Err(format!(
                            "table {dataset}, column {}: relationships.field {field} is not the key of {name} ({})",
                            column.name,
                            target.key()
                        ));
                    }
                    out.push(target);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn datasets(&self) -> &[Dataset] {
        &self.datasets
    }

    pub fn get(&self, name: &str) -> Option<Dataset> {
        self.datasets.iter().copied().find(|d| d.name() == name)
    }
}

impl Dataset {
    /// Everything the contract says of this dataset, as text: what
    /// validate's fingerprint holds, so a changed contract revalidates.
    pub fn contract_digest(self) -> String {
        format!(
            "{:?} {} {:?} {} {:?} {:?}",
            self.format(),
            self.key(),
            self.date_column(),
            self.timezone(),
            self.volume(),
            self.columns()
        )
    }

    /// A dataset of the embedded contracts, for tests.
    pub fn named(name: &str) -> Dataset {
        Catalogue::embedded()
            .get(name)
            .unwrap_or_else(|| panic!("no dataset {name} in the embedded contracts"))
    }

    /// A daily feed with a date column that must equal the ds; the rest
    /// (campaigns, forms, pages) are dimensions the facts reference.
    pub fn is_fact(self) -> bool {
        self.0.date_column.is_some()
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn description(self) -> &'static str {
        self.0.description
    }

    pub fn format(self) -> Format {
        self.0.format
    }

    pub fn key(self) -> &'static str {
        self.0.key
    }

    pub fn columns(self) -> &'static [Column] {
        self.0.columns
    }

    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The column that must fall on the file's ds; dimensions have none.
    pub fn date_column(self) -> Option<&'static str> {
        self.0.date_column
    }

    /// The time zone whose calendar day a timestamp's date is judged in.
    pub fn timezone(self) -> chrono_tz::Tz {
        self.0.timezone
    }

    /// The expected change in rows against the previous ds, if declared.
    pub fn volume(self) -> Option<Volume> {
        self.0.volume
    }

    /// Datasets whose raw keys this one's foreign keys point at.
    pub fn references(self) -> Vec<Dataset> {
        self.0.references.get().cloned().unwrap_or_default()
    }

    pub fn raw_key(self, ds: NaiveDate) -> String {
        self.object_key(Zone::Raw, ds)
    }

    pub fn object_key(self, zone: Zone, ds: NaiveDate) -> String {
        let ext = match zone {
            Zone::Raw => self.format().extension(),
            Zone::Valid | Zone::Quarantine => "parquet",
        };
        format!(
            "{zone}/{name}/ds={ds}/{name}_{ds}.{ext}",
            zone = zone.prefix(),
            name = self.name(),
        )
    }
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Dataset {}

impl std::hash::Hash for Dataset {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

impl PartialOrd for Dataset {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dataset {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.index.cmp(&other.0.index)
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The three areas of the layout (README: the files `run` writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Raw,
    Valid,
    Quarantine,
}

impl Zone {
    pub fn prefix(self) -> &'static str {
        match self {
            Zone::Raw => "raw-data",
            Zone::Valid => "valid-data",
            Zone::Quarantine => "quarantine-data",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_points_at_a_dataset_generated_earlier() {
        for &d in Catalogue::embedded().datasets() {
            for r in d.references() {
                assert!(r < d, "{d} references {r}, which is generated later");
            }
        }
    }

    #[test]
    fn date_columns_exist_with_a_temporal_type() {
        for &d in Catalogue::embedded().datasets() {
            if let Some(name) = d.date_column() {
                let c = d.column(name).expect("date column in catalogue");
                assert!(matches!(c.ty, ColumnType::Date | ColumnType::Timestamp));
            }
        }
    }

    #[test]
    fn keys_are_unique_and_not_nullable() {
        for &d in Catalogue::embedded().datasets() {
            let key = d.column(d.key()).expect("key column");
            assert!(!key.nullable && key.is_unique(), "{d} key");
        }
    }

    #[test]
    fn thresholds_read_counts_and_shares() {
        let t = |s: &str| Threshold::parse(s).unwrap();
        assert!(t("> 10").met(11, 1000) && !t("> 10").met(10, 1000));
        assert!(t(">=0.1%").met(1, 1000) && !t(">=0.1%").met(1, 1001));
        assert!(t("!= 0").met(1, 5) && !t("!=0").met(0, 5));
        assert_eq!(t(">= 0.1%").to_string(), ">= 0.1%");
        for bad in ["10", "> ten", ">-1", "=> 3", ""] {
            assert!(Threshold::parse(bad).is_none(), "{bad}");
        }
    }

    fn load(text: &str) -> Result<&'static Catalogue, String> {
        Catalogue::load(&[("extra.yml".into(), text.into())])
    }

    const SEVENTH: &str = include_str!("../../tests/fixtures/contracts/webinars.yml");

    #[test]
    fn contracts_add_and_replace_tables() {
        let catalogue = load(SEVENTH).unwrap();
        assert_eq!(catalogue.datasets().len(), 7);
        let webinars = catalogue.get("webinars").unwrap();
        assert!(webinars.is_fact());
        assert_eq!(webinars.references(), [catalogue.get("campaigns").unwrap()]);
        let loosened = include_str!("../../tests/fixtures/contracts/forms_loose.yml");
        let forms = load(loosened).unwrap().get("forms").unwrap();
        let form_type = forms.column("form_type").unwrap();
        assert!(form_type.tests.is_empty() && form_type.nullable);
        assert_eq!(load(loosened).unwrap().datasets().len(), 6);
    }

    #[test]
    fn a_malformed_contract_names_its_file_line_and_field() {
        let bad_type = SEVENTH.replace("data_type: date", "data_type: datetime");
        let err = load(&bad_type).err().unwrap();
        assert!(err.starts_with("extra.yml: "), "{err}");
        assert!(
            err.contains("data_type") && err.contains("line 24"),
            "{err}"
        );

        let bad_test = SEVENTH.replace("[not_null, unique]", "[not_null, uniq]");
        let err = load(&bad_test).err().unwrap();
        assert!(
            err.contains("line 11") && err.contains("webinar_id"),
            "{err}"
        );
        assert!(err.contains("unknown test \"uniq\""), "{err}");

        let bad_key = SEVENTH.replace("key: webinar_id", "key: id");
        assert!(
            load(&bad_key)
                .err()
                .unwrap()
                .contains("meta.key: no column id")
        );

        let bad_table = SEVENTH.replace("- name: webinars", "- name: Webinars/x");
        assert!(
            load(&bad_table)
                .err()
                .unwrap()
                .contains("is not a plain name")
        );
        let bad_column = SEVENTH.replace("- name: attendees", "- name: \"attendees; DROP\"");
        let err = load(&bad_column).err().unwrap();
        assert!(
            err.contains("line 19") && err.contains("is not a plain name"),
            "{err}"
        );
        let lonely = SEVENTH.replace(
            "- range: {min: 0}",
            "- true_exactly_when: {column: seats, value: 0}",
        );
        let err = load(&lonely).err().unwrap();
        assert!(err.contains("true_exactly_when: no column seats"), "{err}");

        let dangling = SEVENTH.replace("'campaigns'", "'campains'");
        let err = load(&dangling).err().unwrap();
        assert!(err.contains("unknown table campains"), "{err}");
    }

    #[test]
    fn layout_matches_design() {
        let ds = NaiveDate::from_ymd_opt(2025, 5, 25).unwrap();
        assert_eq!(
            Dataset::named("contacts").raw_key(ds),
            "raw-data/contacts/ds=2025-05-25/contacts_2025-05-25.csv"
        );
        assert_eq!(
            Dataset::named("form_fills").object_key(Zone::Quarantine, ds),
            "quarantine-data/form_fills/ds=2025-05-25/form_fills_2025-05-25.parquet"
        );
        assert_eq!(
            Dataset::named("website_activity").object_key(Zone::Valid, ds),
            "valid-data/website_activity/ds=2025-05-25/website_activity_2025-05-25.parquet"
        );
    }
}
