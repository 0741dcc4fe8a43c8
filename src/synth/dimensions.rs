//! Dimensions: the fixed universes of campaigns, forms and pages.

use std::fmt::Write as _;

use fake::locales::{Data, EN};
use polars::prelude::*;
use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::*;

pub(super) const CAMPAIGN_COUNT: usize = 20;
pub(super) const PAGE_COUNT: usize = 50;

pub(super) const CAMPAIGN_THEMES: &[&str] = &[
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
pub(super) const CAMPAIGN_CHANNELS: &[&str] = &["Paid Search", "LinkedIn", "Email"];

pub(super) fn campaign_id(i: usize) -> String {
    format!("cmp_{:03}", i + 1)
}

pub(super) fn page_id(i: usize) -> String {
    format!("page_{:03}", i + 1)
}

pub(super) fn form_id(i: usize) -> String {
    format!("form_{:02}", i + 1)
}

pub(super) const PAGE_SECTIONS: &[&str] = &["product", "solutions", "blog", "resources", "pricing"];

pub(super) fn page(i: usize) -> (String, String) {
    let section = PAGE_SECTIONS[i % PAGE_SECTIONS.len()];
    let word = <EN as Data>::COMPANY_BS_NOUNS[i % <EN as Data>::COMPANY_BS_NOUNS.len()];
    let slug = word.replace(' ', "-").to_lowercase();
    let url = format!("https://www.example.com/{section}/{slug}-{}", i + 1);
    let mut title = format!("{} {}", capitalize(section), capitalize(word));
    let _ = write!(title, " #{}", i + 1);
    (url, title)
}

pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub(super) fn strings(name: &str, values: impl IntoIterator<Item = String>) -> Column {
    Column::new(name.into(), values.into_iter().collect::<Vec<_>>())
}

pub(super) fn campaigns() -> Vec<Column> {
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

pub(super) fn forms() -> Vec<Column> {
    vec![
        strings("form_id", (0..FORM_TYPES.len()).map(form_id)),
        strings("form_type", FORM_TYPES.iter().map(|t| t.to_string())),
    ]
}

pub(super) fn pages() -> Vec<Column> {
    let (urls, titles): (Vec<_>, Vec<_>) = (0..PAGE_COUNT).map(page).unzip();
    vec![
        strings("page_id", (0..PAGE_COUNT).map(page_id)),
        strings("page_url", urls),
        strings("page_title", titles),
    ]
}

/// Campaign references are skewed 70/20/10: the top 20% of campaigns take
/// 70% of references, the next 30% take 20%, the remaining half 10%.
pub(super) fn skewed_campaign(rng: &mut Pcg64Mcg) -> usize {
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
