//! The dataset catalogue: the one place that says what each dataset is.
//!
//! Every task reads names, formats, keys, columns, types and rules from
//! here, and `describe` publishes them; nothing repeats them.

use std::fmt;

use chrono::NaiveDate;

/// The six source datasets, in the order the DAG generates them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    Campaigns,
    Forms,
    Pages,
    Contacts,
    FormFills,
    WebsiteActivity,
}

/// On-disk format of a raw landing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    NdJson,
    Csv,
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

/// Logical column type; validate casts raw values to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Bool,
    Int,
    Float,
    Date,
    Timestamp,
}

/// A value rule checked on the non-null values of a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// `local@domain.tld`.
    Email,
    /// Canonical 8-4-4-4-12 hexadecimal UUID.
    Uuid,
    /// Inclusive numeric range; `None` leaves that side open.
    Range { min: Option<f64>, max: Option<f64> },
    /// One of a fixed list of values.
    AcceptedValues(&'static [&'static str]),
    /// Must exist as a key of the referenced dataset for the same ds.
    References(Dataset),
    /// A boolean that is true exactly when the named integer column equals `value`.
    TrueExactlyWhen { column: &'static str, value: i64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub nullable: bool,
    pub rules: &'static [Rule],
}

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        rules: &[],
    }
}

const fn nullable(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        rules: &[],
    }
}

const fn ruled(name: &'static str, ty: ColumnType, rules: &'static [Rule]) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        rules,
    }
}

use ColumnType::{Bool, Date, Float, Int, Text, Timestamp};

pub const LEAD_SOURCES: &[&str] = &[
    "organic_search",
    "paid_search",
    "social",
    "email",
    "referral",
    "event",
    "webinar",
    "direct",
];

pub const FORM_TYPES: &[&str] = &[
    "contact_us",
    "demo_request",
    "newsletter",
    "webinar_registration",
    "ebook_download",
    "free_trial",
    "event_registration",
    "pricing_inquiry",
];

pub const EVENT_TYPES: &[&str] = &[
    "page_view",
    "form_view",
    "form_submit",
    "download",
    "video_play",
    "cta_click",
];

const CAMPAIGNS: &[Column] = &[col("campaign_id", Text), col("campaign_name", Text)];

const FORMS: &[Column] = &[
    col("form_id", Text),
    ruled("form_type", Text, &[Rule::AcceptedValues(FORM_TYPES)]),
];

const PAGES: &[Column] = &[
    col("page_id", Text),
    col("page_url", Text),
    col("page_title", Text),
];

const CONTACTS: &[Column] = &[
    ruled("contact_id", Text, &[Rule::Uuid]),
    col("first_name", Text),
    col("last_name", Text),
    ruled("email", Text, &[Rule::Email]),
    col("company", Text),
    col("industry", Text),
    ruled("lead_source", Text, &[Rule::AcceptedValues(LEAD_SOURCES)]),
    col("job_title", Text),
    col("country", Text),
    col("opted_in", Bool),
    col("signup_date", Timestamp),
];

const FORM_FILLS: &[Column] = &[
    ruled("fill_id", Text, &[Rule::Uuid]),
    ruled("form_id", Text, &[Rule::References(Dataset::Forms)]),
    ruled(
        "contact_id",
        Text,
        &[Rule::Uuid, Rule::References(Dataset::Contacts)],
    ),
    ruled("campaign_id", Text, &[Rule::References(Dataset::Campaigns)]),
    col("fill_date", Date),
    nullable("referrer_url", Text),
    col("user_agent", Text),
    ruled(
        "estimated_value",
        Float,
        &[Rule::Range {
            min: Some(100.0),
            max: Some(10_000.0),
        }],
    ),
];

const WEBSITE_ACTIVITY: &[Column] = &[
    ruled("session_id", Text, &[Rule::Uuid]),
    // Anonymous sessions have no contact.
    Column {
        name: "contact_id",
        ty: Text,
        nullable: true,
        rules: &[Rule::Uuid, Rule::References(Dataset::Contacts)],
    },
    ruled("campaign_id", Text, &[Rule::References(Dataset::Campaigns)]),
    ruled("page_id", Text, &[Rule::References(Dataset::Pages)]),
    col("page_url", Text),
    col("page_title", Text),
    col("event_date", Date),
    ruled("event_type", Text, &[Rule::AcceptedValues(EVENT_TYPES)]),
    ruled(
        "session_duration",
        Float,
        &[Rule::Range {
            min: Some(0.0),
            max: None,
        }],
    ),
    ruled(
        "pages_viewed",
        Int,
        &[Rule::Range {
            min: Some(1.0),
            max: None,
        }],
    ),
    ruled(
        "bounce",
        Bool,
        &[Rule::TrueExactlyWhen {
            column: "pages_viewed",
            value: 1,
        }],
    ),
    nullable("referrer_domain", Text),
];

impl Dataset {
    pub const ALL: [Dataset; 6] = [
        Dataset::Campaigns,
        Dataset::Forms,
        Dataset::Pages,
        Dataset::Contacts,
        Dataset::FormFills,
        Dataset::WebsiteActivity,
    ];

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Fixed universes of keys (campaigns, forms, pages) are dimensions;
    /// the daily feeds that reference them are facts.
    pub fn is_fact(self) -> bool {
        self.base_rows().is_some()
    }

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Campaigns => "campaigns",
            Dataset::Forms => "forms",
            Dataset::Pages => "pages",
            Dataset::Contacts => "contacts",
            Dataset::FormFills => "form_fills",
            Dataset::WebsiteActivity => "website_activity",
        }
    }

    pub fn format(self) -> Format {
        match self {
            Dataset::Contacts => Format::Csv,
            Dataset::FormFills => Format::Parquet,
            _ => Format::NdJson,
        }
    }

    pub fn key(self) -> &'static str {
        self.columns()[0].name
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Dataset::Campaigns => CAMPAIGNS,
            Dataset::Forms => FORMS,
            Dataset::Pages => PAGES,
            Dataset::Contacts => CONTACTS,
            Dataset::FormFills => FORM_FILLS,
            Dataset::WebsiteActivity => WEBSITE_ACTIVITY,
        }
    }

    #[cfg(test)]
    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }

    /// The column that must fall on the file's ds; dimensions have none.
    pub fn date_column(self) -> Option<&'static str> {
        match self {
            Dataset::Contacts => Some("signup_date"),
            Dataset::FormFills => Some("fill_date"),
            Dataset::WebsiteActivity => Some("event_date"),
            _ => None,
        }
    }

    /// Rows at scale factor 1; `None` for the fixed dimension universes.
    pub fn base_rows(self) -> Option<usize> {
        match self {
            Dataset::Contacts => Some(10_000),
            Dataset::FormFills => Some(20_000),
            Dataset::WebsiteActivity => Some(50_000),
            _ => None,
        }
    }

    /// Datasets whose raw keys this one's foreign keys point at.
    pub fn references(self) -> Vec<Dataset> {
        let mut out: Vec<Dataset> = self
            .columns()
            .iter()
            .flat_map(|c| c.rules)
            .filter_map(|r| match r {
                Rule::References(d) => Some(*d),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
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

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
        for d in Dataset::ALL {
            for r in d.references() {
                assert!(r < d, "{d} references {r}, which is generated later");
            }
        }
    }

    #[test]
    fn date_columns_exist_with_a_temporal_type() {
        for d in Dataset::ALL {
            if let Some(name) = d.date_column() {
                let c = d.column(name).expect("date column in catalogue");
                assert!(matches!(c.ty, ColumnType::Date | ColumnType::Timestamp));
            }
        }
    }

    #[test]
    fn keys_are_first_and_not_nullable() {
        for d in Dataset::ALL {
            assert!(!d.columns()[0].nullable, "{d} key is nullable");
        }
    }

    #[test]
    fn layout_matches_design() {
        let ds = NaiveDate::from_ymd_opt(2025, 5, 25).unwrap();
        assert_eq!(
            Dataset::Contacts.raw_key(ds),
            "raw-data/contacts/ds=2025-05-25/contacts_2025-05-25.csv"
        );
        assert_eq!(
            Dataset::FormFills.object_key(Zone::Quarantine, ds),
            "quarantine-data/form_fills/ds=2025-05-25/form_fills_2025-05-25.parquet"
        );
        assert_eq!(
            Dataset::WebsiteActivity.object_key(Zone::Valid, ds),
            "valid-data/website_activity/ds=2025-05-25/website_activity_2025-05-25.parquet"
        );
    }
}
