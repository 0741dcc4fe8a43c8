//! The report page: HTML with inline CSS and SVG, no scripts and nothing
//! fetched, so it opens anywhere (a lake browser, an email attachment).
//! Numbers carry `data-dataset`/`data-field` attributes for tests and
//! scrapers.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;

use super::{DatasetReport, tolerance};
use crate::metrics::Details;

/// Characters of one sample value shown.
const VALUE_CHARS: usize = 120;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d1d1f}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
th,td{border:1px solid #d0d0d5;padding:.25rem .5rem;text-align:left;font-size:.9rem}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.new td{background:#fff1c2}tr.fail td.n{color:#b00020}\
.badge{padding:.1rem .4rem;border-radius:.3rem;background:#e8e8ed}\
.rejected{background:#ffd6d6}.quarantined{background:#fff1c2}.validated{background:#d7f5dd}\
svg{vertical-align:middle}polyline{fill:none;stroke:#0a64d6;stroke-width:1.5}";

pub(super) fn page(ds: NaiveDate, from: NaiveDate, reports: &[DatasetReport]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Data quality, {ds}</title><style>{STYLE}</style></head><body>\
         <h1>Data quality, {ds}</h1><p>Checks of every dataset validated for {ds}; \
         trends from {from} to {ds}. New failure patterns are highlighted.</p>"
    );
    summary(&mut out, reports);
    for report in reports {
        dataset(&mut out, ds, from, report);
    }
    out.push_str("</body></html>\n");
    out
}

fn summary(out: &mut String, reports: &[DatasetReport]) {
    out.push_str(
        "<h2>Summary</h2><table><tr><th>dataset</th><th>status</th><th>rows in</th>\
         <th>valid</th><th>quarantined</th><th>new failure patterns</th></tr>",
    );
    for r in reports {
        let (m, name) = (&r.validated, r.dataset.name());
        let _ = write!(
            out,
            "<tr><td><a href=\"#{name}\">{name}</a></td>\
             <td><span class=\"badge {status}\" data-dataset=\"{name}\" data-field=\"status\">{status}</span></td>\
             {}{}{}{}</tr>",
            number(name, "rows_in", m.rows_in),
            number(name, "rows_out", m.rows_out),
            number(name, "invalid_rows", m.invalid_rows),
            number(name, "new_signatures", m.new_signatures.len() as u64),
            status = m.status,
        );
    }
    out.push_str("</table>");
}

fn number(dataset: &str, field: &str, value: u64) -> String {
    format!("<td class=\"n\" data-dataset=\"{dataset}\" data-field=\"{field}\">{value}</td>")
}

fn dataset(out: &mut String, ds: NaiveDate, from: NaiveDate, r: &DatasetReport) {
    let (m, name) = (&r.validated, r.dataset.name());
    let _ = write!(
        out,
        "<h2 id=\"{name}\">{name} <span class=\"badge {status}\">{status}</span></h2>\
         <p>{} rows in, {} valid, {} quarantined.",
        m.rows_in,
        m.rows_out,
        m.invalid_rows,
        status = m.status,
    );
    if let Some(error) = &m.error {
        let _ = write!(out, " <strong>{}</strong>", escape(error));
    }
    out.push_str("</p>");
    let details = match &m.details {
        Some(Details::Validate(details)) => Some(details),
        _ => None,
    };
    if let Some(d) = details {
        if !d.warnings.is_empty() {
            let _ = write!(out, "<p>Warnings: {}</p>", escape(&d.warnings.join(", ")));
        }
        if let Some(v) = &d.volume {
            let _ = write!(
                out,
                "<p>Volume: {} rows against {} on {} (expected {}): {}.</p>",
                v.rows,
                v.previous_rows,
                v.previous_ds,
                escape(&v.expected),
                if v.within { "within" } else { "outside" }
            );
        }
    }
    checks(out, ds, from, r);
    if let Some(sample) = &r.sample {
        out.push_str("<h3>Quarantined rows (first of them)</h3><table><tr>");
        for column in &sample.columns {
            let _ = write!(out, "<th>{}</th>", escape(column));
        }
        out.push_str("</tr>");
        for row in &sample.rows {
            out.push_str("<tr>");
            for value in row {
                let text: String = value
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(VALUE_CHARS)
                    .collect();
                let _ = write!(out, "<td>{}</td>", escape(&text));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    let _ = write!(
        out,
        "<p>Lake: valid slice <code>{}</code>, quarantine slice <code>{}</code>.</p>",
        escape(&r.valid_url),
        escape(&r.quarantine_url)
    );
}

/// Every check recorded for the ds, against its tolerance, with its trend.
fn checks(out: &mut String, ds: NaiveDate, from: NaiveDate, r: &DatasetReport) {
    let name = r.dataset.name();
    let today = ds.to_string();
    let new: Vec<&str> = r
        .validated
        .new_signatures
        .iter()
        .map(String::as_str)
        .collect();
    let signatures: BTreeMap<(String, String), String> = match &r.validated.details {
        Some(Details::Validate(d)) => d
            .failures
            .iter()
            .flatten()
            .map(|f| ((f.check.clone(), f.column.clone()), f.signature.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut trend: BTreeMap<(&str, &str), BTreeMap<&str, u64>> = BTreeMap::new();
    for day in &r.history {
        trend
            .entry((day.check.as_str(), day.column.as_str()))
            .or_default()
            .insert(day.ds.as_str(), day.failed_rows);
    }
    out.push_str(
        "<h3>Checks</h3><table><tr><th>check</th><th>column</th><th>failing rows</th>\
         <th>tolerance</th><th>trend</th><th>signature</th></tr>",
    );
    for day in r.history.iter().filter(|d| d.ds == today) {
        let key = (day.check.clone(), day.column.clone());
        let signature = signatures.get(&key).map(String::as_str).unwrap_or("");
        let is_new = !signature.is_empty() && new.contains(&signature);
        let class = match (is_new, day.failed_rows) {
            (true, _) => " class=\"new fail\"",
            (false, 0) => "",
            (false, _) => " class=\"fail\"",
        };
        let days = &trend[&(day.check.as_str(), day.column.as_str())];
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{}</td>\
             <td class=\"n\" data-dataset=\"{name}\" data-field=\"failed:{}:{}\">{}</td>\
             <td>{}</td><td>{}</td><td><code>{}</code>{}</td></tr>",
            escape(&day.check),
            escape(&day.column),
            escape(&day.check),
            escape(&day.column),
            day.failed_rows,
            escape(&tolerance(r.dataset, &day.check, &day.column)),
            sparkline(from, ds, days),
            signature,
            if is_new { " new" } else { "" },
        );
    }
    out.push_str("</table>");
}

/// Failing rows per day from `from` to `to` as an inline SVG line.
fn sparkline(from: NaiveDate, to: NaiveDate, days: &BTreeMap<&str, u64>) -> String {
    let (width, height) = (120.0, 24.0);
    let span = (to - from).num_days().max(1) as f64;
    let max = days.values().copied().max().unwrap_or(0).max(1) as f64;
    let points: Vec<String> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .enumerate()
        .map(|(i, d)| {
            let failed = days.get(d.to_string().as_str()).copied().unwrap_or(0) as f64;
            let x = i as f64 / span * width;
            let y = height - 2.0 - failed / max * (height - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"failing rows per day\"><polyline points=\"{}\"/></svg>",
        points.join(" ")
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_sparkline_has_a_point_per_day() {
        let from = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2025, 5, 30).unwrap();
        let days = BTreeMap::from([("2025-05-30", 4)]);
        let svg = sparkline(from, to, &days);
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 30);
        assert!(points.ends_with("120.0,2.0"), "{points}");
    }
}
