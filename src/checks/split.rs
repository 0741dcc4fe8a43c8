//! The valid/quarantine split of a file, batch by batch: cast-and-flag
//! (typed copies and one failure flag per check), count (rows failing each
//! check, what an alert shows) and partition (the valid rows and the
//! quarantine rows with their reasons). Every row ends up in exactly one
//! of the two.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, KeySet, duplicate, flag, plan, typed, unreferenced};
use crate::catalog::{Dataset, Rule, Severity};
use crate::exit::first_line;

/// Name of the quarantine column listing the failed checks.
pub(crate) const FAILED_CHECKS: &str = "failed_checks";
const INVALID: &str = "__invalid";
/// Keys of offending rows an alert shows per failing check.
const SAMPLE_KEYS: usize = 3;

/// Why a whole file was rejected.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub check: &'static str,
    pub column: String,
    pub rule: &'static str,
    pub reason: String,
}

impl Rejection {
    pub(crate) fn unreadable(reason: String) -> Self {
        Self {
            check: "file",
            column: "*".into(),
            rule: "readable",
            reason,
        }
    }

    pub(crate) fn result(&self) -> CheckResult {
        CheckResult {
            check: self.check,
            column: self.column.clone(),
            rule: self.rule.to_string(),
            failed_rows: 1,
        }
    }
}

/// What a DQ alert shows for a failing check: the pattern, the count and a
/// few offending keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureSummary {
    pub check: String,
    pub column: String,
    pub rule: String,
    pub failed_rows: u64,
    pub signature: String,
    pub sample_keys: Vec<Option<String>>,
    /// `warn`: the rows were kept in the valid slice.
    #[serde(default, skip_serializing_if = "Severity::is_error")]
    pub severity: Severity,
}

/// Rows failing each check.
pub(crate) struct Summary {
    pub results: Vec<CheckResult>,
    pub failures: Vec<FailureSummary>,
    /// Rows failing at least one check of `error` severity.
    pub failing: u64,
    /// Checks whose `error_if` the file meets: it is rejected.
    pub rejected_by: Vec<String>,
    /// Checks whose `warn_if` the file meets (any failing row of a `warn`
    /// check without one).
    pub warnings: Vec<String>,
}

/// The outcome of a whole file once its last batch is checked.
pub(crate) struct Verdict {
    pub rows_in: u64,
    pub summary: Summary,
    /// The label every row of a file rejected over its tolerance gets
    /// (too many failing rows, a check's `error_if`, a volume outside its
    /// band); `None` when the valid rows are kept.
    pub rejection: Option<String>,
}

/// When a checked file is rejected as a whole.
pub(crate) struct Tolerance {
    /// Largest share of rows that may fail `error` checks.
    pub max_invalid_ratio: f64,
    /// A rejection decided apart from the rows' checks (a volume outside
    /// its band), as the label its rows get.
    pub rejected_by: Option<String>,
}

/// One batch split: the valid rows with their catalogue types, and the
/// failing rows as raw text with the checks they failed.
pub(crate) struct Checked {
    pub valid: DataFrame,
    pub quarantine: DataFrame,
}

/// The keys of each referenced dataset, by name.
pub(crate) type References = HashMap<&'static str, KeySet>;

/// Checks a file batch by batch, in order. What spans batches is held
/// here: the keys seen (unique checks), the counts per check, the sample
/// keys. Memory grows with the keys, never with the rows checked.
pub(crate) struct Validator<'r> {
    dataset: Dataset,
    plan: Vec<Check>,
    references: &'r References,
    /// Columns with a unique check, and the keys seen so far.
    seen: Vec<(&'static str, KeySet)>,
    /// Columns with a foreign key, and the dataset it names.
    lookups: Vec<(&'static str, &'static str)>,
    failed: Vec<u64>,
    /// Per check, the nulls of its raw column (for type_cast).
    raw_nulls: Vec<u64>,
    samples: Vec<Vec<Option<String>>>,
    failing: u64,
    rows_in: u64,
}

impl<'r> Validator<'r> {
    /// `expected_rows` sizes the unique checks' key sets, so that they are
    /// not regrown (each doubling re-hashes every key held).
    pub(crate) fn new(
        dataset: Dataset,
        ds: NaiveDate,
        references: &'r References,
        expected_rows: usize,
    ) -> Self {
        let plan = plan(dataset, ds);
        let columns = dataset.columns();
        let seen = columns
            .iter()
            .filter(|c| c.test(Rule::Unique).is_some())
            .map(|c| (c.name, KeySet::with_capacity(expected_rows)))
            .collect();
        let lookups = columns
            .iter()
            .flat_map(|c| {
                c.tests.iter().filter_map(move |t| match t.rule {
                    Rule::References { dataset, .. } => Some((c.name, dataset)),
                    _ => None,
                })
            })
            .collect();
        let checks = plan.len();
        Self {
            dataset,
            plan,
            references,
            seen,
            lookups,
            failed: vec![0; checks],
            raw_nulls: vec![0; checks],
            samples: vec![Vec::new(); checks],
            failing: 0,
            rows_in: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn checks(&self) -> &[Check] {
        &self.plan
    }

    /// Rows checked so far.
    pub(crate) fn rows_in(&self) -> u64 {
        self.rows_in
    }

    /// Rows failing check `index` of `checks()` so far.
    #[cfg(test)]
    pub(crate) fn failed_rows(&self, index: usize) -> u64 {
        self.failed[index]
    }

    /// Checks the next batch, counts its failures and splits it. Wrong
    /// columns, or columns that cannot be cast at all, reject the file.
    pub(crate) fn check(&mut self, raw: DataFrame) -> Result<Checked, Rejection> {
        let work = self.flag(raw)?;
        self.count(&work);
        self.partition(work).map_err(unreadable)
    }

    /// Every row of the next batch as quarantine rows, the passing ones
    /// labelled `label`: the second pass over a file rejected as a whole,
    /// by a fresh validator, so that its flags are the first pass's.
    pub(crate) fn quarantine_all(
        &mut self,
        raw: DataFrame,
        label: &str,
    ) -> Result<DataFrame, Rejection> {
        let work = self.flag(raw)?;
        let note = when(col(INVALID).not())
            .then(lit(label.to_string()))
            .otherwise(lit(NULL));
        self.with_reasons(work.lazy(), Some(note))
            .map_err(unreadable)
    }

    /// The file's outcome after its last batch. A column none of whose
    /// values casts rejects it (it is the wrong column, not a few bad
    /// values).
    pub(crate) fn finish(&self, tolerance: Tolerance) -> Result<Verdict, Rejection> {
        let rows_in = self.rows_in;
        let mut results = Vec::with_capacity(self.plan.len());
        let mut failures = Vec::new();
        let (mut rejected_by, mut warnings) = (Vec::new(), Vec::new());
        for (i, check) in self.plan.iter().enumerate() {
            let failed = self.failed[i];
            if check.check == "type_cast" && failed > 0 && failed == rows_in - self.raw_nulls[i] {
                return Err(Rejection {
                    check: "schema",
                    column: check.column.to_string(),
                    rule: "castable columns",
                    reason: format!("column {} has no value {}", check.column, check.rule),
                });
            }
            if failed > 0 {
                failures.push(self.failure_summary(i, failed));
            }
            let config = check.config;
            if let Some(limit) = config.error_if.filter(|t| t.met(failed, rows_in)) {
                rejected_by.push(format!("{} error_if {limit}", check.label()));
            }
            let warns = match config.warn_if {
                Some(limit) => limit.met(failed, rows_in),
                None => !config.severity.is_error() && failed > 0,
            };
            if warns {
                warnings.push(check.label());
            }
            results.push(check.result(failed));
        }
        rejected_by.splice(0..0, tolerance.rejected_by);
        let over_ratio = self.failing as f64 > tolerance.max_invalid_ratio * rows_in as f64;
        let rejection = match (rejected_by.first(), over_ratio) {
            (Some(check), _) => Some(format!("rejected:{check}")),
            (None, true) => Some("rejected:invalid_ratio".to_string()),
            (None, false) => None,
        };
        Ok(Verdict {
            rows_in,
            summary: Summary {
                results,
                failures,
                failing: self.failing,
                rejected_by,
                warnings,
            },
            rejection,
        })
    }

    /// The batch's raw columns, their typed copies, the key flags and one
    /// flag per check.
    fn flag(&mut self, raw: DataFrame) -> Result<DataFrame, Rejection> {
        check_columns(self.dataset, &raw)?;
        let schema = raw.schema().clone();
        let typed_columns: Vec<Expr> = (self.dataset.columns().iter())
            .map(|spec| {
                let raw_type = schema.get(spec.name).unwrap_or(&DataType::Null);
                super::cast_to_type(spec, raw_type).alias(typed(spec.name))
            })
            .collect();
        let flags: Vec<Expr> = (self.plan.iter().enumerate())
            .map(|(i, c)| c.fails.clone().alias(flag(i)))
            .collect();
        // A row is invalid when it fails a check of `error` severity; `warn`
        // checks count their rows and keep them.
        let any_failed = (self.plan.iter().enumerate())
            .filter(|(_, c)| c.config.severity.is_error())
            .map(|(i, _)| col(flag(i)))
            .reduce(|a, b| a.or(b));
        let mut work = raw
            .lazy()
            .with_columns(typed_columns)
            .collect()
            .map_err(uncastable)?;
        let mut key_flags = Vec::with_capacity(self.seen.len() + self.lookups.len());
        for (name, keys) in &mut self.seen {
            let first = keys.first_occurrences(work.column(&typed(name)).map_err(uncastable)?);
            key_flags.push((!first.map_err(uncastable)?).with_name(duplicate(name).into()));
        }
        let empty = KeySet::default();
        for (name, target) in &self.lookups {
            let keys = self.references.get(target).unwrap_or(&empty);
            let known = keys.contains(work.column(&typed(name)).map_err(uncastable)?);
            key_flags.push((!known.map_err(uncastable)?).with_name(unreferenced(name).into()));
        }
        for flags in key_flags {
            work.with_column(flags.into_column()).map_err(uncastable)?;
        }
        work.lazy()
            .with_columns(flags)
            .with_column(any_failed.unwrap_or(lit(false)).alias(INVALID))
            .collect()
            .map_err(uncastable)
    }

    fn count(&mut self, work: &DataFrame) {
        self.rows_in += work.height() as u64;
        self.failing += count_true(work, INVALID);
        let key = self.dataset.key();
        for (i, check) in self.plan.iter().enumerate() {
            let failed = count_true(work, &flag(i));
            self.failed[i] += failed;
            if check.check == "type_cast" {
                self.raw_nulls[i] += work.column(check.column).map_or(0, |c| c.null_count()) as u64;
            }
            let wanted = SAMPLE_KEYS - self.samples[i].len();
            if failed > 0 && wanted > 0 {
                self.samples[i].extend(sample_keys(work, key, &flag(i), wanted));
            }
        }
    }

    /// The valid rows (typed, with the catalogue's names) and the failing
    /// rows with their reasons.
    fn partition(&self, work: DataFrame) -> PolarsResult<Checked> {
        let columns = self.dataset.columns();
        let invalid = mask(&work, INVALID)?;
        let failing = work
            .select(
                (columns.iter().map(|c| c.name.to_string())).chain((0..self.plan.len()).map(flag)),
            )?
            .filter(&invalid)?;
        let quarantine = self.with_reasons(failing.lazy(), None)?;
        let mut valid = work
            .select(columns.iter().map(|c| typed(c.name)))?
            .filter(&!invalid)?;
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        valid.set_column_names(&names)?;
        Ok(Checked { valid, quarantine })
    }

    /// `rows` as raw text with `FAILED_CHECKS` listing their failed checks
    /// (and `extra`'s label, where it has one).
    fn with_reasons(&self, rows: LazyFrame, extra: Option<Expr>) -> PolarsResult<DataFrame> {
        let mut labels: Vec<Expr> = self
            .plan
            .iter()
            .enumerate()
            .map(|(i, c)| when(col(flag(i))).then(lit(c.label())).otherwise(lit(NULL)))
            .collect();
        labels.extend(extra);
        let mut out: Vec<Expr> = self
            .dataset
            .columns()
            .iter()
            .map(|c| col(c.name).cast(DataType::String))
            .collect();
        out.push(concat_str(labels, ";", true).alias(FAILED_CHECKS));
        rows.select(out).collect()
    }

    fn failure_summary(&self, index: usize, failed: u64) -> FailureSummary {
        let check = &self.plan[index];
        let result = check.result(failed);
        FailureSummary {
            signature: result.signature(self.dataset.name()),
            check: result.check.to_string(),
            column: result.column,
            rule: result.rule,
            failed_rows: failed,
            sample_keys: self.samples[index].clone(),
            severity: check.config.severity,
        }
    }
}

/// The quarantine columns of any batch: the catalogue's columns as text and
/// the failed checks.
pub(crate) fn quarantine_schema(dataset: Dataset) -> Schema {
    (dataset
        .columns()
        .iter()
        .map(|c| c.name)
        .chain([FAILED_CHECKS]))
    .map(|name| Field::new(name.into(), DataType::String))
    .collect()
}

/// The valid slice's columns: the catalogue's, with their types.
pub(crate) fn valid_schema(dataset: Dataset) -> Schema {
    (dataset.columns().iter())
        .map(|c| Field::new(c.name.into(), super::data_type(c.ty)))
        .collect()
}

/// The first `wanted` keys of the rows where `flag` is true.
fn sample_keys(work: &DataFrame, key: &str, flag: &str, wanted: usize) -> Vec<Option<String>> {
    mask(work, flag)
        .and_then(|failed| work.column(key)?.filter(&failed))
        .and_then(|keys| keys.head(Some(wanted)).cast(&DataType::String))
        .ok()
        .and_then(|keys| {
            let keys = keys.str().ok()?;
            Some(keys.iter().map(|v| v.map(str::to_string)).collect())
        })
        .unwrap_or_default()
}

fn uncastable(e: PolarsError) -> Rejection {
    Rejection {
        check: "schema",
        column: "*".into(),
        rule: "castable columns",
        reason: format!(
            "columns cannot be cast to their types: {}",
            first_line(&e.to_string())
        ),
    }
}

fn unreadable(e: PolarsError) -> Rejection {
    Rejection::unreadable(first_line(&e.to_string()).to_string())
}

/// A flag column as one chunk. Filtering a column by a one-chunk mask
/// slices the mask to the column's chunks; a mask chunked differently from
/// the column would make Polars copy the column into one chunk first.
fn mask(frame: &DataFrame, name: &str) -> PolarsResult<BooleanChunked> {
    Ok(frame.column(name)?.bool()?.rechunk().into_owned())
}

fn count_true(frame: &DataFrame, name: &str) -> u64 {
    frame
        .column(name)
        .ok()
        .and_then(|c| c.bool().ok().map(|b| b.num_trues() as u64))
        .unwrap_or(0)
}

/// The file must have exactly the catalogue's columns (in any order).
fn check_columns(dataset: Dataset, raw: &DataFrame) -> Result<(), Rejection> {
    let have: HashSet<&str> = raw.get_column_names().iter().map(|n| n.as_str()).collect();
    let want: HashSet<&str> = dataset.columns().iter().map(|c| c.name).collect();
    let mut missing: Vec<&str> = want.difference(&have).copied().collect();
    let mut extra: Vec<&str> = have.difference(&want).copied().collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    extra.sort_unstable();
    let column = format!(
        "missing=[{}] extra=[{}]",
        missing.join(","),
        extra.join(",")
    );
    Err(Rejection {
        check: "schema",
        reason: format!("columns do not match the catalogue: {column}"),
        column,
        rule: "exact columns",
    })
}
