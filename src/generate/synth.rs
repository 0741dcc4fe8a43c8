//! The generator core: deterministic synthetic rows as Polars columns.
//!
//! Separate from the file formats and the CLI. Every random stream is seeded
//! from (seed, ds, dataset, purpose), so a dataset can be regenerated alone
//! and the facts can recompute the contact keys they reference without
//! reading the contacts file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

use anyhow::Result;
use chrono::{Datelike, NaiveDate};
use fake::locales::{Data, EN};
use polars::prelude::*;
use rand::seq::index;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::catalog::{Dataset, EVENT_TYPES, FORM_TYPES, LEAD_SOURCES};

/// What makes a generated file: identical params give identical bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenParams {
    pub seed: u64,
    pub ds: NaiveDate,
    pub scale_factor: f64,
    pub defect_rate: f64,
}

impl GenParams {
    /// Rows for a dataset; dimensions are fixed universes.
    pub fn rows(&self, dataset: Dataset) -> usize {
        match dataset.base_rows() {
            Some(base) => ((base as f64 * self.scale_factor).round() as usize).max(1),
            None => match dataset {
                Dataset::Campaigns => CAMPAIGN_COUNT,
                Dataset::Forms => FORM_TYPES.len(),
                _ => PAGE_COUNT,
            },
        }
    }

    fn rng(&self, dataset: Dataset, purpose: u64) -> Pcg64Mcg {
        let mut h = splitmix64(self.seed);
        h = splitmix64(h ^ self.ds.num_days_from_ce() as u64);
        h = splitmix64(h ^ dataset as u64);
        Pcg64Mcg::seed_from_u64(splitmix64(h ^ purpose))
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const KEYS: u64 = 1;
const DEFECTS: u64 = 2;
const VALUES: u64 = 3;

/// A known defect, named by the validation check that must catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    NullKey,
    DuplicateKey,
    MalformedUuid,
    MalformedEmail,
    WrongDate,
    OutOfRange,
    DanglingForeignKey,
}

impl Defect {
    pub fn check(self) -> &'static str {
        match self {
            Defect::NullKey => "not_null",
            Defect::DuplicateKey => "unique",
            Defect::MalformedUuid => "uuid_format",
            Defect::MalformedEmail => "email_format",
            Defect::WrongDate => "freshness",
            Defect::OutOfRange => "range",
            Defect::DanglingForeignKey => "foreign_key",
        }
    }

    /// Defects a dataset can carry; dimensions are kept clean.
    fn applicable(dataset: Dataset) -> &'static [Defect] {
        use Defect::*;
        match dataset {
            Dataset::Contacts => &[
                NullKey,
                DuplicateKey,
                MalformedUuid,
                MalformedEmail,
                WrongDate,
            ],
            Dataset::FormFills | Dataset::WebsiteActivity => &[
                NullKey,
                DuplicateKey,
                MalformedUuid,
                WrongDate,
                OutOfRange,
                DanglingForeignKey,
            ],
            _ => &[],
        }
    }
}

/// Which rows carry which defect: at most one per row, so each defective
/// row fails exactly one check. Row 0 is always clean, so every duplicate
/// can copy the key of a clean row before it.
struct DefectPlan {
    by_row: Vec<Option<Defect>>,
    injected: BTreeMap<String, u64>,
}

impl DefectPlan {
    fn new(params: &GenParams, dataset: Dataset, rows: usize) -> Self {
        let kinds = Defect::applicable(dataset);
        let mut by_row = vec![None; rows];
        let mut injected = BTreeMap::new();
        let wanted = (rows as f64 * params.defect_rate).floor() as usize;
        let count = wanted.min(rows.saturating_sub(1));
        if kinds.is_empty() || count == 0 {
            return Self { by_row, injected };
        }
        let mut rng = params.rng(dataset, DEFECTS);
        for (n, i) in index::sample(&mut rng, rows - 1, count)
            .into_iter()
            .enumerate()
        {
            let defect = kinds[n % kinds.len()];
            by_row[i + 1] = Some(defect);
            *injected.entry(defect.check().to_string()).or_insert(0) += 1;
        }
        Self { by_row, injected }
    }

    fn at(&self, row: usize) -> Option<Defect> {
        self.by_row[row]
    }

    /// The nearest clean row before `row`, whose key a duplicate copies.
    fn clean_before(&self, row: usize) -> usize {
        (0..row)
            .rev()
            .find(|&j| self.by_row[j].is_none())
            .unwrap_or(0)
    }
}

/// A generated dataset (whole or as chunks) and the defects injected into it.
pub struct Generated<T> {
    pub output: T,
    pub injected: BTreeMap<String, u64>,
}

/// Rows per independent random stream. Fixed, so that the output does not
/// depend on how many threads generate the chunks.
const CHUNK_ROWS: usize = 1 << 16;

/// What every chunk of a fact table shares.
struct Facts<'a> {
    params: &'a GenParams,
    plan: &'a DefectPlan,
    /// Random bits of every row's key.
    keys: &'a [u128],
    /// Contacts the facts may reference (empty for contacts themselves).
    contacts: &'a [u128],
}

/// How many chunks `generate_chunks` makes.
pub fn chunk_count(dataset: Dataset, params: &GenParams) -> usize {
    match dataset {
        Dataset::Campaigns | Dataset::Forms | Dataset::Pages => 1,
        _ => params.rows(dataset).div_ceil(CHUNK_ROWS),
    }
}

/// The whole dataset as one frame.
pub fn generate(dataset: Dataset, params: &GenParams) -> Result<Generated<DataFrame>> {
    let generated = generate_chunks(dataset, params, |_, chunk| Ok(chunk))?;
    let mut chunks = generated.output.into_iter();
    let mut frame = chunks.next().unwrap_or_default();
    for chunk in chunks {
        frame.vstack_mut_owned(chunk)?;
    }
    Ok(Generated {
        output: frame,
        injected: generated.injected,
    })
}

/// Generates the dataset in chunks, in parallel, and hands each chunk with
/// its index to `each` on the thread that made it, so that it can be
/// serialised while still in cache and freed at once. Returns what `each`
/// made, in chunk order.
pub fn generate_chunks<T: Send>(
    dataset: Dataset,
    params: &GenParams,
    each: impl Fn(usize, DataFrame) -> Result<T> + Sync,
) -> Result<Generated<Vec<T>>> {
    let rows = params.rows(dataset);
    let plan = DefectPlan::new(params, dataset, rows);
    let dimension = match dataset {
        Dataset::Campaigns => Some(campaigns()),
        Dataset::Forms => Some(forms()),
        Dataset::Pages => Some(pages()),
        _ => None,
    };
    let output = match dimension {
        Some(columns) => vec![each(0, DataFrame::new(rows, columns)?)?],
        None => {
            let keys = random_keys(params, dataset, rows);
            let contacts = match dataset {
                Dataset::Contacts => Vec::new(),
                _ => clean_contact_ids(params),
            };
            let facts = Facts {
                params,
                plan: &plan,
                keys: &keys,
                contacts: &contacts,
            };
            (0..chunk_count(dataset, params))
                .into_par_iter()
                .map(|index| {
                    let start = index * CHUNK_ROWS;
                    let range = start..(start + CHUNK_ROWS).min(rows);
                    let mut rng = params.rng(dataset, VALUES + index as u64 * 16);
                    let columns = match dataset {
                        Dataset::Contacts => contacts_chunk(&facts, &mut rng, range.clone()),
                        Dataset::FormFills => form_fills_chunk(&facts, &mut rng, range.clone()),
                        _ => website_activity_chunk(&facts, &mut rng, range.clone()),
                    };
                    each(index, DataFrame::new(range.len(), columns)?)
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    Ok(Generated {
        output,
        injected: plan.injected,
    })
}

// ---- keys -------------------------------------------------------------

fn random_keys(params: &GenParams, dataset: Dataset, rows: usize) -> Vec<u128> {
    let mut rng = params.rng(dataset, KEYS);
    (0..rows).map(|_| rng.random::<u128>()).collect()
}

/// Writes `bits` as a canonical version-4 UUID.
fn push_uuid(buf: &mut String, bits: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (bits & !(0xF << 76)) | (0x4 << 76);
    let bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            buf.push('-');
        }
        buf.push(HEX[((bits >> (124 - 4 * i)) & 0xF) as usize] as char);
    }
}

/// Builds a chunk of a fact table's key column, applying the key defects.
fn key_column(name: &str, facts: &Facts, rows: Range<usize>) -> Column {
    let (keys, plan) = (facts.keys, facts.plan);
    let mut out = StringChunkedBuilder::new(name.into(), rows.len());
    let mut buf = String::with_capacity(40);
    for row in rows {
        let bits = keys[row];
        buf.clear();
        match plan.at(row) {
            Some(Defect::NullKey) => {
                out.append_null();
                continue;
            }
            Some(Defect::DuplicateKey) => push_uuid(&mut buf, keys[plan.clean_before(row)]),
            Some(Defect::MalformedUuid) => {
                push_uuid(&mut buf, bits);
                buf.truncate(8);
                buf.insert_str(0, "tmp-");
            }
            _ => push_uuid(&mut buf, bits),
        }
        out.append_value(buf.as_str());
    }
    out.finish().into_column()
}

/// Contact ids that validation will accept: facts reference only these, so
/// a defective contact never cascades into a foreign-key failure.
fn clean_contact_ids(params: &GenParams) -> Vec<u128> {
    let rows = params.rows(Dataset::Contacts);
    let plan = DefectPlan::new(params, Dataset::Contacts, rows);
    random_keys(params, Dataset::Contacts, rows)
        .into_iter()
        .enumerate()
        .filter(|&(row, _)| plan.at(row).is_none())
        .map(|(_, id)| id)
        .collect()
}

// ---- dimensions (fixed universes) -------------------------------------

const CAMPAIGN_COUNT: usize = 20;
const PAGE_COUNT: usize = 50;

const CAMPAIGN_THEMES: &[&str] = &[
    "Spring Launch",
    "Product Webinar Series",
    "Customer Stories",
    "Analytics Summit",
    "Free Trial Push",
    "Partner Co-Marketing",
    "Retargeting",
    "Brand Awareness",
    "Holiday Promo",
    "Industry Report",
];
const CAMPAIGN_CHANNELS: &[&str] = &["Paid Search", "LinkedIn", "Email"];

fn campaign_id(i: usize) -> String {
    format!("cmp_{:03}", i + 1)
}

fn page_id(i: usize) -> String {
    format!("page_{:03}", i + 1)
}

fn form_id(i: usize) -> String {
    format!("form_{:02}", i + 1)
}

const PAGE_SECTIONS: &[&str] = &["product", "solutions", "blog", "resources", "pricing"];

fn page(i: usize) -> (String, String) {
    let section = PAGE_SECTIONS[i % PAGE_SECTIONS.len()];
    let word = <EN as Data>::COMPANY_BS_NOUNS[i % <EN as Data>::COMPANY_BS_NOUNS.len()];
    let slug = word.replace(' ', "-").to_lowercase();
    let url = format!("https://www.example.com/{section}/{slug}-{}", i + 1);
    let mut title = format!("{} {}", capitalize(section), capitalize(word));
    let _ = write!(title, " #{}", i + 1);
    (url, title)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn strings(name: &str, values: impl IntoIterator<Item = String>) -> Column {
    Column::new(name.into(), values.into_iter().collect::<Vec<_>>())
}

fn campaigns() -> Vec<Column> {
    let names = (0..CAMPAIGN_COUNT).map(|i| {
        let theme = CAMPAIGN_THEMES[i % CAMPAIGN_THEMES.len()];
        let channel = CAMPAIGN_CHANNELS[i % CAMPAIGN_CHANNELS.len()];
        format!("{theme} - {channel}")
    });
    vec![
        strings("campaign_id", (0..CAMPAIGN_COUNT).map(campaign_id)),
        strings("campaign_name", names),
    ]
}

fn forms() -> Vec<Column> {
    vec![
        strings("form_id", (0..FORM_TYPES.len()).map(form_id)),
        strings("form_type", FORM_TYPES.iter().map(|t| t.to_string())),
    ]
}

fn pages() -> Vec<Column> {
    let (urls, titles): (Vec<_>, Vec<_>) = (0..PAGE_COUNT).map(page).unzip();
    vec![
        strings("page_id", (0..PAGE_COUNT).map(page_id)),
        strings("page_url", urls),
        strings("page_title", titles),
    ]
}

/// Campaign references are skewed 70/20/10: the top 20% of campaigns take
/// 70% of references, the next 30% take 20%, the remaining half 10%.
fn skewed_campaign(rng: &mut Pcg64Mcg) -> usize {
    let (top, mid) = (CAMPAIGN_COUNT / 5, CAMPAIGN_COUNT / 2);
    let tier: f64 = rng.random();
    if tier < 0.7 {
        rng.random_range(0..top)
    } else if tier < 0.9 {
        rng.random_range(top..mid)
    } else {
        rng.random_range(mid..CAMPAIGN_COUNT)
    }
}

// ---- facts --------------------------------------------------------------

const MICROS_PER_DAY: i64 = 86_400_000_000;
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

fn epoch_days(ds: NaiveDate) -> i32 {
    ds.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

fn wrong_day(rng: &mut Pcg64Mcg, ds_days: i32) -> i32 {
    ds_days - rng.random_range(1..=30)
}

fn date_column(name: &str, days: Vec<i32>) -> Column {
    Int32Chunked::from_vec(name.into(), days)
        .into_date()
        .into_column()
}

fn pick<'a>(rng: &mut Pcg64Mcg, values: &[&'a str]) -> &'a str {
    values[rng.random_range(0..values.len())]
}

const COMPANY_KINDS: &[&str] = &[
    "Group",
    "Labs",
    "Analytics",
    "Systems",
    "Partners",
    "Holdings",
    "Software",
    "Health",
];

const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "example.com",
    "example.org",
    "acme.io",
];

fn contacts_chunk(facts: &Facts, rng: &mut Pcg64Mcg, range: Range<usize>) -> Vec<Column> {
    let first_names = <EN as Data>::NAME_FIRST_NAME;
    let last_names = <EN as Data>::NAME_LAST_NAME;
    let industries = <EN as Data>::COMPANY_INDUSTRY;
    let countries = <EN as Data>::ADDRESS_COUNTRY;
    let seniority = <EN as Data>::JOB_SENIORITY;
    let fields = <EN as Data>::JOB_FIELD;
    let positions = <EN as Data>::JOB_POSITION;

    let (plan, rows) = (facts.plan, range.len());
    let ds_days = epoch_days(facts.params.ds);

    let mut first = StringChunkedBuilder::new("first_name".into(), rows);
    let mut last = StringChunkedBuilder::new("last_name".into(), rows);
    let mut email = StringChunkedBuilder::new("email".into(), rows);
    let mut company = StringChunkedBuilder::new("company".into(), rows);
    let mut industry = StringChunkedBuilder::new("industry".into(), rows);
    let mut lead_source = StringChunkedBuilder::new("lead_source".into(), rows);
    let mut job_title = StringChunkedBuilder::new("job_title".into(), rows);
    let mut country = StringChunkedBuilder::new("country".into(), rows);
    let mut opted_in = Vec::with_capacity(rows);
    let mut signup = Vec::with_capacity(rows);
    let mut buf = String::with_capacity(64);

    for row in range.clone() {
        let defect = plan.at(row);
        let f = pick(rng, first_names);
        let l = pick(rng, last_names);
        first.append_value(f);
        last.append_value(l);

        buf.clear();
        for c in f.chars().chain(Some('.')).chain(l.chars()) {
            if c.is_ascii_alphanumeric() || c == '.' {
                buf.push(c.to_ascii_lowercase());
            }
        }
        let _ = write!(buf, "{}", rng.random_range(1..1000u32));
        let separator = if defect == Some(Defect::MalformedEmail) {
            '.'
        } else {
            '@'
        };
        buf.push(separator);
        buf.push_str(pick(rng, DOMAINS));
        email.append_value(buf.as_str());

        buf.clear();
        buf.push_str(pick(rng, last_names));
        buf.push(' ');
        buf.push_str(pick(rng, COMPANY_KINDS));
        company.append_value(buf.as_str());

        industry.append_value(pick(rng, industries));
        lead_source.append_value(pick(rng, LEAD_SOURCES));

        buf.clear();
        buf.push_str(pick(rng, seniority));
        buf.push(' ');
        buf.push_str(pick(rng, fields));
        buf.push(' ');
        buf.push_str(pick(rng, positions));
        job_title.append_value(buf.as_str());

        country.append_value(pick(rng, countries));
        opted_in.push(rng.random_bool(0.6));

        let day = if defect == Some(Defect::WrongDate) {
            wrong_day(rng, ds_days)
        } else {
            ds_days
        };
        // Whole seconds: CSV carries them as ISO-8601 without a fraction.
        let micros = rng.random_range(0..86_400i64) * 1_000_000;
        signup.push(day as i64 * MICROS_PER_DAY + micros);
    }

    vec![
        key_column("contact_id", facts, range),
        first.finish().into_column(),
        last.finish().into_column(),
        email.finish().into_column(),
        company.finish().into_column(),
        industry.finish().into_column(),
        lead_source.finish().into_column(),
        job_title.finish().into_column(),
        country.finish().into_column(),
        Column::new("opted_in".into(), opted_in),
        Int64Chunked::from_vec("signup_date".into(), signup)
            .into_datetime(TimeUnit::Microseconds, None)
            .into_column(),
    ]
}

const REFERRERS: &[&str] = &[
    "https://www.google.com/search?q=",
    "https://www.bing.com/search?q=",
    "https://www.linkedin.com/feed/?topic=",
    "https://twitter.com/search?q=",
    "https://news.example.com/articles/",
];

const REFERRER_DOMAINS: &[&str] = &[
    "google.com",
    "bing.com",
    "linkedin.com",
    "twitter.com",
    "facebook.com",
    "duckduckgo.com",
    "reddit.com",
];

/// Writes the id of a dangling or clean contact.
fn push_contact(buf: &mut String, rng: &mut Pcg64Mcg, contacts: &[u128], dangling: bool) {
    let bits = if dangling {
        rng.random::<u128>()
    } else {
        contacts[rng.random_range(0..contacts.len())]
    };
    push_uuid(buf, bits);
}

fn form_fills_chunk(facts: &Facts, rng: &mut Pcg64Mcg, range: Range<usize>) -> Vec<Column> {
    let (plan, rows, contacts) = (facts.plan, range.len(), facts.contacts);
    let ds_days = epoch_days(facts.params.ds);
    let words = <EN as Data>::COMPANY_BS_NOUNS;
    let agents = <EN as Data>::INTERNET_USER_AGENT;
    let form_ids: Vec<String> = (0..FORM_TYPES.len()).map(form_id).collect();
    let campaign_ids: Vec<String> = (0..CAMPAIGN_COUNT).map(campaign_id).collect();

    let mut form = StringChunkedBuilder::new("form_id".into(), rows);
    let mut contact = StringChunkedBuilder::new("contact_id".into(), rows);
    let mut campaign = StringChunkedBuilder::new("campaign_id".into(), rows);
    let mut referrer = StringChunkedBuilder::new("referrer_url".into(), rows);
    let mut agent = StringChunkedBuilder::new("user_agent".into(), rows);
    let mut fill_date = Vec::with_capacity(rows);
    let mut value = Vec::with_capacity(rows);
    let mut buf = String::with_capacity(64);

    for row in range.clone() {
        let defect = plan.at(row);
        form.append_value(&form_ids[rng.random_range(0..form_ids.len())]);
        buf.clear();
        let dangling = defect == Some(Defect::DanglingForeignKey);
        push_contact(&mut buf, rng, contacts, dangling);
        contact.append_value(buf.as_str());
        campaign.append_value(&campaign_ids[skewed_campaign(rng)]);
        if rng.random_bool(0.15) {
            referrer.append_null();
        } else {
            buf.clear();
            buf.push_str(pick(rng, REFERRERS));
            buf.push_str(&pick(rng, words).replace(' ', "+"));
            referrer.append_value(buf.as_str());
        }
        agent.append_value(pick(rng, agents));
        fill_date.push(if defect == Some(Defect::WrongDate) {
            wrong_day(rng, ds_days)
        } else {
            ds_days
        });
        let cents = if defect == Some(Defect::OutOfRange) {
            rng.random_range(1_000_001..5_000_000i64)
        } else {
            rng.random_range(10_000..=1_000_000i64)
        };
        value.push(cents as f64 / 100.0);
    }

    vec![
        key_column("fill_id", facts, range),
        form.finish().into_column(),
        contact.finish().into_column(),
        campaign.finish().into_column(),
        date_column("fill_date", fill_date),
        referrer.finish().into_column(),
        agent.finish().into_column(),
        Column::new("estimated_value".into(), value),
    ]
}

fn website_activity_chunk(facts: &Facts, rng: &mut Pcg64Mcg, range: Range<usize>) -> Vec<Column> {
    let (plan, rows, contacts) = (facts.plan, range.len(), facts.contacts);
    let ds_days = epoch_days(facts.params.ds);
    let campaign_ids: Vec<String> = (0..CAMPAIGN_COUNT).map(campaign_id).collect();
    let page_ids: Vec<String> = (0..PAGE_COUNT).map(page_id).collect();
    let page_meta: Vec<(String, String)> = (0..PAGE_COUNT).map(page).collect();

    let mut contact = StringChunkedBuilder::new("contact_id".into(), rows);
    let mut campaign = StringChunkedBuilder::new("campaign_id".into(), rows);
    let mut page_col = StringChunkedBuilder::new("page_id".into(), rows);
    let mut url = StringChunkedBuilder::new("page_url".into(), rows);
    let mut title = StringChunkedBuilder::new("page_title".into(), rows);
    let mut event_type = StringChunkedBuilder::new("event_type".into(), rows);
    let mut referrer = StringChunkedBuilder::new("referrer_domain".into(), rows);
    let mut event_date = Vec::with_capacity(rows);
    let mut duration = Vec::with_capacity(rows);
    let mut viewed = Vec::with_capacity(rows);
    let mut bounce = Vec::with_capacity(rows);
    let mut buf = String::with_capacity(40);

    for row in range.clone() {
        let defect = plan.at(row);
        // 40% of sessions are anonymous.
        if rng.random_bool(0.4) {
            contact.append_null();
        } else {
            buf.clear();
            push_contact(&mut buf, rng, contacts, false);
            contact.append_value(buf.as_str());
        }
        campaign.append_value(&campaign_ids[skewed_campaign(rng)]);
        let p = rng.random_range(0..PAGE_COUNT);
        if defect == Some(Defect::DanglingForeignKey) {
            page_col.append_value("page_404");
        } else {
            page_col.append_value(&page_ids[p]);
        }
        url.append_value(&page_meta[p].0);
        title.append_value(&page_meta[p].1);
        event_date.push(if defect == Some(Defect::WrongDate) {
            wrong_day(rng, ds_days)
        } else {
            ds_days
        });
        event_type.append_value(pick(rng, EVENT_TYPES));
        // Roughly 40% bounces; deeper sessions get geometrically rarer.
        let mut pages = 1i64;
        while pages < 30 && rng.random_bool(if pages == 1 { 0.6 } else { 0.5 }) {
            pages += 1;
        }
        let tenths = if pages == 1 {
            rng.random_range(0..300i64)
        } else {
            pages * rng.random_range(100..1200i64)
        };
        let seconds = tenths as f64 / 10.0;
        duration.push(if defect == Some(Defect::OutOfRange) {
            -(seconds + 1.0)
        } else {
            seconds
        });
        viewed.push(pages);
        bounce.push(pages == 1);
        if rng.random_bool(0.25) {
            referrer.append_null();
        } else {
            referrer.append_value(pick(rng, REFERRER_DOMAINS));
        }
    }

    vec![
        key_column("session_id", facts, range),
        contact.finish().into_column(),
        campaign.finish().into_column(),
        page_col.finish().into_column(),
        url.finish().into_column(),
        title.finish().into_column(),
        date_column("event_date", event_date),
        event_type.finish().into_column(),
        Column::new("session_duration".into(), duration),
        Column::new("pages_viewed".into(), viewed),
        Column::new("bounce".into(), bounce),
        referrer.finish().into_column(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(defect_rate: f64) -> GenParams {
        GenParams {
            seed: 7,
            ds: NaiveDate::from_ymd_opt(2025, 5, 25).unwrap(),
            scale_factor: 0.1,
            defect_rate,
        }
    }

    #[test]
    fn columns_follow_the_catalogue() {
        for d in Dataset::ALL {
            let g = generate(d, &params(0.05)).unwrap();
            let names: Vec<&str> = g
                .output
                .get_column_names()
                .iter()
                .map(|n| n.as_str())
                .collect();
            let expected: Vec<&str> = d.columns().iter().map(|c| c.name).collect();
            assert_eq!(names, expected, "{d}");
            assert_eq!(g.output.height(), params(0.05).rows(d), "{d}");
        }
    }

    #[test]
    fn same_params_same_frame_other_seed_other_frame() {
        let a = generate(Dataset::Contacts, &params(0.05)).unwrap().output;
        let b = generate(Dataset::Contacts, &params(0.05)).unwrap().output;
        assert!(a.equals_missing(&b));
        let other = GenParams {
            seed: 8,
            ..params(0.05)
        };
        let c = generate(Dataset::Contacts, &other).unwrap().output;
        assert!(!a.equals_missing(&c));
    }

    #[test]
    fn defect_counts_match_the_rate_and_clean_data_has_none() {
        let g = generate(Dataset::FormFills, &params(0.06)).unwrap();
        let total: u64 = g.injected.values().sum();
        assert_eq!(total, (2_000.0 * 0.06f64).floor() as u64);
        assert_eq!(
            g.injected.len(),
            6,
            "every defect kind injected: {:?}",
            g.injected
        );
        assert!(
            generate(Dataset::FormFills, &params(0.0))
                .unwrap()
                .injected
                .is_empty()
        );
    }

    #[test]
    fn uuids_are_canonical_v4() {
        let mut s = String::new();
        push_uuid(&mut s, u128::MAX);
        assert_eq!(s, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        s.clear();
        push_uuid(&mut s, 0);
        assert_eq!(s, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn bounce_is_true_exactly_for_single_page_sessions() {
        let f = generate(Dataset::WebsiteActivity, &params(0.0))
            .unwrap()
            .output;
        let viewed = f.column("pages_viewed").unwrap().i64().unwrap();
        let bounce = f.column("bounce").unwrap().bool().unwrap();
        let ok = viewed
            .iter()
            .zip(bounce.iter())
            .all(|(v, b)| (v == Some(1)) == b.unwrap());
        assert!(ok);
    }

    #[test]
    fn campaign_references_are_skewed() {
        let f = generate(Dataset::FormFills, &params(0.0)).unwrap().output;
        let ids = f.column("campaign_id").unwrap().str().unwrap();
        let top = ids
            .iter()
            .filter(|id| id.is_some_and(|id| id <= "cmp_004"))
            .count() as f64;
        let share = top / f.height() as f64;
        assert!((0.65..0.75).contains(&share), "top tier share {share}");
    }
}
