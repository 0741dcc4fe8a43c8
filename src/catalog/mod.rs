//! The dataset catalogue: the one place that says what each dataset is,
//! built from the data contracts (contracts/raw.yml, embedded in the
//! binary; `PIPELINE_CONTRACTS` replaces or adds tables at run time). Every
//! task reads names, formats, keys, columns, types and rules from here, and
//! `describe` publishes them.

mod contract;

use std::fmt;
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::Deserialize;

/// The contracts built into the binary.
pub const EMBEDDED: (&str, &str) = ("contracts/raw.yml", include_str!("../../contracts/raw.yml"));

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

/// A value rule checked on the non-null values of a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// No value occurs twice.
    Unique,
    /// `local@domain.tld`.
    Email,
    /// Canonical 8-4-4-4-12 hexadecimal UUID.
    Uuid,
    /// Inclusive numeric range; `None` leaves that side open.
    Range { min: Option<f64>, max: Option<f64> },
    /// One of a fixed list of values.
    AcceptedValues(&'static [&'static str]),
    /// Must exist as `field` of the named dataset for the same ds.
    References {
        dataset: &'static str,
        field: &'static str,
    },
    /// A boolean that is true exactly when the named integer column equals `value`.
    TrueExactlyWhen { column: &'static str, value: i64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    /// No `not_null` test.
    pub nullable: bool,
    pub rules: &'static [Rule],
}

impl Column {
    pub fn is_unique(&self) -> bool {
        self.rules.contains(&Rule::Unique)
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
            for rule in column.rules {
                if let Rule::References {
                    dataset: name,
                    field,
                } = *rule
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

    fn load(text: &str) -> Result<&'static Catalogue, String> {
        Catalogue::load(&[("extra.yml".into(), text.into())])
    }

    const SEVENTH: &str = "
version: 2
sources:
  - name: raw
    tables:
      - name: webinars
        meta: {format: csv, key: webinar_id, date_column: held_on}
        columns:
          - name: webinar_id
            data_type: text
            data_tests: [not_null, unique]
          - name: campaign_id
            data_type: text
            data_tests:
              - relationships: {to: \"source('raw', 'campaigns')\", field: campaign_id}
          - name: held_on
            data_type: date
";

    #[test]
    fn contracts_add_and_replace_tables() {
        let catalogue = load(SEVENTH).unwrap();
        assert_eq!(catalogue.datasets().len(), 7);
        let webinars = catalogue.get("webinars").unwrap();
        assert!(webinars.is_fact());
        assert_eq!(webinars.references(), [catalogue.get("campaigns").unwrap()]);
        let loosened = "
version: 2
sources:
  - name: raw
    tables:
      - name: forms
        meta: {format: jsonl, key: form_id}
        columns:
          - name: form_id
            data_type: text
            data_tests: [not_null, unique]
          - name: form_type
            data_type: text
";
        let forms = load(loosened).unwrap().get("forms").unwrap();
        assert!(forms.column("form_type").unwrap().rules.is_empty());
        assert_eq!(load(loosened).unwrap().datasets().len(), 6);
    }

    #[test]
    fn a_malformed_contract_names_its_file_line_and_field() {
        let bad_type = SEVENTH.replace("data_type: date", "data_type: datetime");
        let err = load(&bad_type).err().unwrap();
        assert!(err.starts_with("extra.yml: "), "{err}");
        assert!(
            err.contains("data_type") && err.contains("line 17"),
            "{err}"
        );

        let bad_test = SEVENTH.replace("[not_null, unique]", "[not_null, uniq]");
        let err = load(&bad_test).err().unwrap();
        assert!(
            err.contains("line 9") && err.contains("webinar_id"),
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
