//! Facts: contacts, form fills and website sessions, chunk by chunk.

use std::fmt::Write as _;
use std::ops::Range;

use chrono::Datelike;
use fake::locales::{Data, EN};
use polars::prelude::*;
use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::*;

pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;
pub(super) const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

pub(super) fn epoch_days(ds: NaiveDate) -> i32 {
    ds.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

pub(super) fn wrong_day(rng: &mut Pcg64Mcg, ds_days: i32) -> i32 {
    ds_days - rng.random_range(1..=30)
}

pub(super) fn date_column(name: &str, days: Vec<i32>) -> Column {
    Int32Chunked::from_vec(name.into(), days)
        .into_date()
        .into_column()
}

pub(super) fn pick<'a>(rng: &mut Pcg64Mcg, values: &[&'a str]) -> &'a str {
    values[rng.random_range(0..values.len())]
}

pub(super) const COMPANY_KINDS: &[&str] = &[
    "Group",
    "Labs",
    "Analytics",
    "Systems",
    "Partners",
    "Holdings",
    "Software",
    "Health",
];

pub(super) const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "example.com",
    "example.org",
    "acme.io",
];

pub(super) fn contacts_chunk(
    facts: &Facts,
    rng: &mut Pcg64Mcg,
    range: Range<usize>,
) -> Vec<Column> {
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

pub(super) const REFERRERS: &[&str] = &[
    "https://www.google.com/search?q=",
    "https://www.bing.com/search?q=",
    "https://www.linkedin.com/feed/?topic=",
    "https://twitter.com/search?q=",
    "https://news.example.com/articles/",
];

pub(super) const REFERRER_DOMAINS: &[&str] = &[
    "google.com",
    "bing.com",
    "linkedin.com",
    "twitter.com",
    "facebook.com",
    "duckduckgo.com",
    "reddit.com",
];

/// Writes the id of a dangling or clean contact.
pub(super) fn push_contact(
    buf: &mut String,
    rng: &mut Pcg64Mcg,
    contacts: &[u128],
    dangling: bool,
) {
    let bits = if dangling {
        rng.random::<u128>()
    } else {
        contacts[rng.random_range(0..contacts.len())]
    };
    push_uuid(buf, bits);
}

pub(super) fn form_fills_chunk(
    facts: &Facts,
    rng: &mut Pcg64Mcg,
    range: Range<usize>,
) -> Vec<Column> {
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

pub(super) fn website_activity_chunk(
    facts: &Facts,
    rng: &mut Pcg64Mcg,
    range: Range<usize>,
) -> Vec<Column> {
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
