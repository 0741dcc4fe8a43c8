//! The data-quality report, rendered by a real browser: headless Chromium
//! (Debian's package; .ci/run installs it) loads the page the way a person
//! would, with no console errors, and the numbers on it are the numbers in
//! the metrics.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{DS, Pipeline};
use serde_json::Value;

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "headless Chromium is needed at {} (CHROMIUM_BIN); .ci/run installs Debian's chromium",
        path.display()
    );
    path
}

/// The DOM Chromium builds from the page, and the console messages it logged.
fn render(page: &std::path::Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).to_string(), console)
}

/// The number the page shows for `dataset` and `field`.
fn shown(dom: &str, dataset: &str, field: &str) -> Option<String> {
    let marker = format!("data-dataset=\"{dataset}\" data-field=\"{field}\">");
    let start = dom.find(&marker)? + marker.len();
    Some(dom[start..].split('<').next()?.to_string())
}

#[test]
fn the_report_renders_in_chromium_with_the_numbers_of_the_metrics() {
    let p = Pipeline::new();
    let run = p.ok(&["run", "--ds", DS], 0);
    let page = p.lake().join(format!("reports/ds={DS}/index.html"));
    assert!(page.exists(), "run writes the report");
    let (dom, console) = render(&page);
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(dom.contains("<h1>Data quality, 2025-05-25</h1>"), "{dom}");

    let validated: Vec<&Value> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task"] == "validate")
        .collect();
    assert_eq!(validated.len(), common::datasets().len());
    for task in validated {
        let dataset = task["dataset"].as_str().unwrap();
        for field in ["rows_in", "rows_out", "invalid_rows", "status"] {
            let expected = match &task[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                shown(&dom, dataset, field),
                Some(expected),
                "{dataset} {field}"
            );
        }
    }
    // Every failing check of a dataset, with its count; a first run's
    // failure patterns are all new, and highlighted.
    let contacts = p.ok(&["validate", "contacts", "--ds", DS], 0);
    for (check, rows) in contacts["failed"].as_object().unwrap() {
        let column = contacts["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == *check)
            .unwrap()["column"]
            .as_str()
            .unwrap();
        let field = format!("failed:{check}:{column}");
        assert_eq!(
            shown(&dom, "contacts", &field),
            Some(rows.to_string()),
            "{field}"
        );
    }
    assert!(
        dom.contains("class=\"new fail\""),
        "new patterns are highlighted"
    );
    assert!(dom.matches("<polyline").count() > 10, "a trend per check");
    assert!(dom.contains("Quarantined rows"), "sample rows are shown");
}

#[test]
fn the_report_task_publishes_the_page_and_names_it() {
    let p = Pipeline::new();
    let none = p.run(&["report", "--ds", DS]);
    assert_eq!(none.code, 99, "nothing validated yet");
    p.generate_all();
    p.ok(&["validate", "forms", "--ds", DS], 0);
    let report = p.ok(&["report", "--ds", DS], 0);
    assert_eq!(report["status"], "reported");
    assert_eq!(report["datasets"], serde_json::json!(["forms"]));
    let url = report["outputs"]["report"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("reports/ds={DS}/index.html")),
        "{url}"
    );
    let (dom, console) = render(&p.lake().join(format!("reports/ds={DS}/index.html")));
    assert!(console.is_empty(), "{console:?}");
    assert_eq!(shown(&dom, "forms", "status").as_deref(), Some("validated"));
}
