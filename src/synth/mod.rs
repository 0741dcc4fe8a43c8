//! The generator core: deterministic synthetic rows as Polars columns.
//!
//! Separate from the file formats and the CLI. Every random stream is seeded
//! from (seed, ds, dataset, purpose), so a dataset can be regenerated alone
//! and the facts can recompute the contact keys they reference without
//! reading the contacts file.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::index;
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::catalog::Dataset;
use dimensions::*;
use facts::*;
use keys::*;

mod dimensions;
mod facts;
mod keys;

/// The datasets generate has a synthetic generator for: the six of the
/// embedded contracts. Their order seeds the random streams, so it is
/// fixed here rather than taken from the contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Builtin {
    Campaigns,
    Forms,
    Pages,
    Contacts,
    FormFills,
    WebsiteActivity,
}

impl Builtin {
    pub(crate) const ALL: [Builtin; 6] = [
        Builtin::Campaigns,
        Builtin::Forms,
        Builtin::Pages,
        Builtin::Contacts,
        Builtin::FormFills,
        Builtin::WebsiteActivity,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::Campaigns => "campaigns",
            Builtin::Forms => "forms",
            Builtin::Pages => "pages",
            Builtin::Contacts => "contacts",
            Builtin::FormFills => "form_fills",
            Builtin::WebsiteActivity => "website_activity",
        }
    }

    /// The generator of a dataset of the contracts, if it has one.
    pub(crate) fn of(dataset: Dataset) -> Option<Builtin> {
        Builtin::ALL
            .into_iter()
            .find(|b| b.name() == dataset.name())
    }

    /// Rows at scale factor 1; `None` for the fixed dimension universes.
    fn base_rows(self) -> Option<usize> {
        match self {
            Builtin::Contacts => Some(10_000),
            Builtin::FormFills => Some(20_000),
            Builtin::WebsiteActivity => Some(50_000),
            _ => None,
        }
    }
}

/// Values the generator draws from; the contracts' accepted values.
pub(crate) const LEAD_SOURCES: &[&str] = &[
    "organic_search",
    "paid_search",
    "social",
    "email",
    "referral",
    "event",
    "webinar",
    "direct",
];

pub(crate) const FORM_TYPES: &[&str] = &[
    "contact_us",
    "demo_request",
    "newsletter",
    "webinar_registration",
    "ebook_download",
    "free_trial",
    "event_registration",
    "pricing_inquiry",
];

pub(crate) const EVENT_TYPES: &[&str] = &[
    "page_view",
    "form_view",
    "form_submit",
    "download",
    "video_play",
    "cta_click",
];

/// What makes a generated file: identical params give identical bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GenParams {
    pub seed: u64,
    pub ds: NaiveDate,
    pub scale_factor: f64,
    pub defect_rate: f64,
}

impl GenParams {
    /// Rows for a dataset; dimensions are fixed universes.
    pub(crate) fn rows(&self, dataset: Builtin) -> usize {
        match dataset.base_rows() {
            Some(base) => ((base as f64 * self.scale_factor).round() as usize).max(1),
            None => match dataset {
                Builtin::Campaigns => CAMPAIGN_COUNT,
                Builtin::Forms => FORM_TYPES.len(),
                _ => PAGE_COUNT,
            },
        }
    }

    fn rng(&self, dataset: Builtin, purpose: u64) -> Pcg64Mcg {
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
pub(crate) enum Defect {
    NullKey,
    DuplicateKey,
    MalformedUuid,
    MalformedEmail,
    WrongDate,
    OutOfRange,
    DanglingForeignKey,
}

impl Defect {
    pub(crate) fn check(self) -> &'static str {
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
    fn applicable(dataset: Builtin) -> &'static [Defect] {
        use Defect::*;
        match dataset {
            Builtin::Contacts => &[
                NullKey,
                DuplicateKey,
                MalformedUuid,
                MalformedEmail,
                WrongDate,
            ],
            Builtin::FormFills | Builtin::WebsiteActivity => &[
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
    fn new(params: &GenParams, dataset: Builtin, rows: usize) -> Self {
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
pub(crate) struct Generated<T> {
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
pub(crate) fn chunk_count(dataset: Builtin, params: &GenParams) -> usize {
    match dataset {
        Builtin::Campaigns | Builtin::Forms | Builtin::Pages => 1,
        _ => params.rows(dataset).div_ceil(CHUNK_ROWS),
    }
}

/// The whole dataset as one frame.
#[cfg(test)]
pub(crate) fn generate(dataset: Builtin, params: &GenParams) -> Result<Generated<DataFrame>> {
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
pub(crate) fn generate_chunks<T: Send>(
    dataset: Builtin,
    params: &GenParams,
    each: impl Fn(usize, DataFrame) -> Result<T> + Sync,
) -> Result<Generated<Vec<T>>> {
    let rows = params.rows(dataset);
    let plan = DefectPlan::new(params, dataset, rows);
    let dimension = match dataset {
        Builtin::Campaigns => Some(campaigns()),
        Builtin::Forms => Some(forms()),
        Builtin::Pages => Some(pages()),
        _ => None,
    };
    let output = match dimension {
        Some(columns) => vec![each(0, DataFrame::new(rows, columns)?)?],
        None => {
            let keys = random_keys(params, dataset, rows);
            let contacts = match dataset {
                Builtin::Contacts => Vec::new(),
                _ => clean_contact_ids(params),
            };
            let facts = Facts {
                params,
                plan: &plan,
                keys: &keys,
                contacts: &contacts,
            };
            // In waves of one chunk per thread, so that chunks finish
            // nearly in order and a writer taking them in order holds few.
            let count = chunk_count(dataset, params);
            let wave = rayon::current_num_threads().max(1);
            let mut output = Vec::with_capacity(count);
            for first in (0..count).step_by(wave) {
                let chunks = (first..(first + wave).min(count))
                    .into_par_iter()
                    .map(|index| {
                        let start = index * CHUNK_ROWS;
                        let range = start..(start + CHUNK_ROWS).min(rows);
                        let mut rng = params.rng(dataset, VALUES + index as u64 * 16);
                        let columns = match dataset {
                            Builtin::Contacts => contacts_chunk(&facts, &mut rng, range.clone()),
                            Builtin::FormFills => form_fills_chunk(&facts, &mut rng, range.clone()),
                            _ => website_activity_chunk(&facts, &mut rng, range.clone()),
                        };
                        each(index, DataFrame::new(range.len(), columns)?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                output.extend(chunks);
            }
            output
        }
    };
    Ok(Generated {
        output,
        injected: plan.injected,
    })
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
    fn columns_are_the_contracts() {
        for d in Builtin::ALL {
            let contract = Dataset::named(d.name());
            let g = generate(d, &params(0.05)).unwrap();
            let names: Vec<&str> = g
                .output
                .get_column_names()
                .iter()
                .map(|n| n.as_str())
                .collect();
            let expected: Vec<&str> = contract.columns().iter().map(|c| c.name).collect();
            assert_eq!(names, expected, "{d:?}");
            assert_eq!(g.output.height(), params(0.05).rows(d), "{d:?}");
        }
    }

    #[test]
    fn same_params_same_frame_other_seed_other_frame() {
        let a = generate(Builtin::Contacts, &params(0.05)).unwrap().output;
        let b = generate(Builtin::Contacts, &params(0.05)).unwrap().output;
        assert!(a.equals_missing(&b));
        let other = GenParams {
            seed: 8,
            ..params(0.05)
        };
        let c = generate(Builtin::Contacts, &other).unwrap().output;
        assert!(!a.equals_missing(&c));
    }

    #[test]
    fn defect_counts_match_the_rate_and_clean_data_has_none() {
        let g = generate(Builtin::FormFills, &params(0.06)).unwrap();
        let total: u64 = g.injected.values().sum();
        assert_eq!(total, (2_000.0 * 0.06f64).floor() as u64);
        assert_eq!(
            g.injected.len(),
            6,
            "every defect kind injected: {:?}",
            g.injected
        );
        assert!(
            generate(Builtin::FormFills, &params(0.0))
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
        let f = generate(Builtin::WebsiteActivity, &params(0.0))
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
        let f = generate(Builtin::FormFills, &params(0.0)).unwrap().output;
        let ids = f.column("campaign_id").unwrap().str().unwrap();
        let top = ids
            .iter()
            .filter(|id| id.is_some_and(|id| id <= "cmp_004"))
            .count() as f64;
        let share = top / f.height() as f64;
        assert!((0.65..0.75).contains(&share), "top tier share {share}");
    }
}
