//! The valid/quarantine split of one parsed file, in three steps:
//! cast-and-flag (typed copies and one failure flag per check),
//! summarise (rows failing each check, what an alert shows) and
//! partition (the valid rows and the quarantine rows with their reasons).
//! Every row ends up in exactly one of the two.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Check, CheckResult, flag, plan, typed};
use crate::catalog::{Dataset, Severity};
use crate::exit::first_line;
use crate::formats;

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

/// A file's raw columns, their typed copies and one flag per check.
pub(crate) struct Flagged {
    dataset: Dataset,
    plan: Vec<Check>,
    work: DataFrame,
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

/// The split of a readable file with the right columns.
pub(crate) struct Split {
    pub rows_in: u64,
    pub summary: Summary,
    /// `None` when the file is rejected for too many failing rows.
    pub valid: Option<ValidSlice>,
    pub quarantine: DataFrame,
}

/// The valid rows, kept as the typed columns of every row and a mask, so
/// that the slice is filtered row group by row group as it is written
/// rather than copied whole first.
pub(crate) struct ValidSlice {
    typed: DataFrame,
    keep: BooleanChunked,
    pub rows: u64,
}

impl ValidSlice {
    pub(crate) fn parquet(&self) -> anyhow::Result<Vec<u8>> {
        formats::parquet_where(&self.typed, &self.keep)
    }
}

/// When a checked file is rejected as a whole.
pub(crate) struct Tolerance {
    /// Largest share of rows that may fail `error` checks.
    pub max_invalid_ratio: f64,
    /// A rejection decided before the rows were checked (a volume outside
    /// its band), as the label its rows get.
    pub rejected_by: Option<String>,
}

/// Checks `raw` and splits it. A file with the wrong columns or a column of
/// which no value casts is a `Rejection`; one over its tolerance (too many
/// failing rows, a check's `error_if`, `tolerance.rejected_by`) has no
/// valid slice and all its rows quarantined.
pub(crate) fn split(
    dataset: Dataset,
    ds: NaiveDate,
    raw: DataFrame,
    references: &HashMap<&'static str, Series>,
    tolerance: Tolerance,
) -> Result<Split, Rejection> {
    let rows_in = raw.height() as u64;
    let flagged = cast_and_flag(dataset, ds, raw, references)?;
    let mut summary = flagged.summarise()?;
    summary.rejected_by.splice(0..0, tolerance.rejected_by);
    let max_invalid_ratio = tolerance.max_invalid_ratio;
    let over_ratio = summary.failing as f64 > max_invalid_ratio * rows_in as f64;
    let rejection = match (summary.rejected_by.first(), over_ratio) {
        (Some(check), _) => Some(format!("rejected:{check}")),
        (None, true) => Some("rejected:invalid_ratio".to_string()),
        (None, false) => None,
    };
    let (valid, quarantine) = flagged
        .partition(rejection, rows_in - summary.failing)
        .map_err(|e| Rejection::unreadable(first_line(&e.to_string()).to_string()))?;
    Ok(Split {
        rows_in,
        summary,
        valid,
        quarantine,
    })
}

/// Casts every column to its catalogue type and evaluates every check.
pub(crate) fn cast_and_flag(
    dataset: Dataset,
    ds: NaiveDate,
    raw: DataFrame,
    references: &HashMap<&'static str, Series>,
) -> Result<Flagged, Rejection> {
    check_columns(dataset, &raw)?;
    let schema = raw.schema().clone();
    let typed_columns: Vec<Expr> = dataset
        .columns()
        .iter()
        .map(|spec| {
            let raw_type = schema.get(spec.name).unwrap_or(&DataType::Null);
            super::cast_to_type(spec, raw_type).alias(typed(spec.name))
        })
        .collect();
    let plan = plan(dataset, ds, references);
    let flags: Vec<Expr> = plan
        .iter()
        .enumerate()
        .map(|(i, c)| c.fails.clone().alias(flag(i)))
        .collect();
    // A row is invalid when it fails a check of `error` severity; `warn`
    // checks count their rows and keep them.
    let any_failed = (plan.iter().enumerate())
        .filter(|(_, c)| c.config.severity.is_error())
        .map(|(i, _)| col(flag(i)))
        .reduce(|a, b| a.or(b));
    let work = raw
        .lazy()
        .with_columns(typed_columns)
        .with_columns(flags)
        .with_column(any_failed.unwrap_or(lit(false)).alias(INVALID))
        .collect()
        .map_err(|e| Rejection {
            check: "schema",
            column: "*".into(),
            rule: "castable columns",
            reason: format!(
                "columns cannot be cast to their types: {}",
                first_line(&e.to_string())
            ),
        })?;
    Ok(Flagged {
        dataset,
        plan,
        work,
    })
}

impl Flagged {
    #[cfg(test)]
    pub(crate) fn checks(&self) -> &[Check] {
        &self.plan
    }

    /// Rows failing check `index` of `checks()`.
    pub(crate) fn failed_rows(&self, index: usize) -> u64 {
        count_true(&self.work, &flag(index))
    }

    /// Counts per check; a column none of whose values casts rejects the
    /// file (it is the wrong column, not a few bad values).
    pub(crate) fn summarise(&self) -> Result<Summary, Rejection> {
        let rows_in = self.work.height() as u64;
        let mut results = Vec::with_capacity(self.plan.len());
        let mut failures = Vec::new();
        let (mut rejected_by, mut warnings) = (Vec::new(), Vec::new());
        for (i, check) in self.plan.iter().enumerate() {
            let failed = self.failed_rows(i);
            if check.check == "type_cast" && failed > 0 {
                let nulls = self.work.column(check.column).map_or(0, |c| c.null_count());
                if failed == rows_in - nulls as u64 {
                    return Err(Rejection {
                        check: "schema",
                        column: check.column.to_string(),
                        rule: "castable columns",
                        reason: format!("column {} has no value {}", check.column, check.rule),
                    });
                }
            }
            if failed > 0 {
                failures.push(self.failure_summary(check, failed, i));
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
        Ok(Summary {
            results,
            failures,
            failing: count_true(&self.work, INVALID),
            rejected_by,
            warnings,
        })
    }

    /// The valid slice and the quarantine rows, each labelled with the
    /// checks it failed; for a `rejection` (its label) no valid slice, and
    /// every row quarantined, the passing ones labelled with it.
    fn partition(
        self,
        rejection: Option<String>,
        valid_rows: u64,
    ) -> PolarsResult<(Option<ValidSlice>, DataFrame)> {
        let columns = self.dataset.columns();
        if let Some(label) = rejection {
            let note = when(col(INVALID).not())
                .then(lit(label))
                .otherwise(lit(NULL));
            let quarantine = self.with_reasons(self.work.clone().lazy(), Some(note))?;
            return Ok((None, quarantine));
        }
        let invalid = mask(&self.work, INVALID)?;
        let failing = self
            .work
            .select(
                (columns.iter().map(|c| c.name.to_string())).chain((0..self.plan.len()).map(flag)),
            )?
            .filter(&invalid)?;
        let quarantine = self.with_reasons(failing.lazy(), None)?;
        let mut typed_rows = self.work.select(columns.iter().map(|c| typed(c.name)))?;
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        typed_rows.set_column_names(&names)?;
        let valid = ValidSlice {
            typed: typed_rows,
            keep: !invalid,
            rows: valid_rows,
        };
        Ok((Some(valid), quarantine))
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

    fn failure_summary(&self, check: &Check, failed: u64, index: usize) -> FailureSummary {
        let samples: Vec<Option<String>> = mask(&self.work, &flag(index))
            .and_then(|failed| self.work.column(self.dataset.key())?.filter(&failed))
            .and_then(|keys| keys.head(Some(SAMPLE_KEYS)).cast(&DataType::String))
            .ok()
            .and_then(|keys| {
                let keys = keys.str().ok()?;
                Some(keys.iter().map(|v| v.map(str::to_string)).collect())
            })
            .unwrap_or_default();
        let result = check.result(failed);
        FailureSummary {
            signature: result.signature(self.dataset),
            check: result.check.to_string(),
            column: result.column,
            rule: result.rule,
            failed_rows: failed,
            sample_keys: samples,
            severity: check.config.severity,
        }
    }
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
