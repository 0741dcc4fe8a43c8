//! Validate reads a file in batches sized from the memory limit. Whatever
//! the batch size, the split is the same to the byte: unique keys are
//! tracked across batches, counts and sample keys add up, and a file
//! rejected as a whole is quarantined whole in a second pass.

mod common;

use common::{DS, Pipeline};
use serde_json::Value;

/// The parts of validate's metrics that must not depend on batching.
fn outcome(metrics: &Value) -> Value {
    let keep = [
        "status",
        "rows_in",
        "rows_out",
        "invalid_rows",
        "failed",
        "failures",
        "slices",
    ];
    keep.iter()
        .map(|k| (k.to_string(), metrics[*k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn small_batches_split_a_file_exactly_as_one_batch_does() {
    let p = Pipeline::new();
    for dataset in common::datasets() {
        p.command(&["generate", dataset, "--ds", DS])
            .env("SCALE_FACTOR", "1.5")
            .output()
            .unwrap();
    }
    for (dataset, ext) in [
        ("contacts", "csv"),
        ("website_activity", "jsonl"),
        ("form_fills", "parquet"),
    ] {
        // Text is cut every MiB under this limit, Parquet every 16,384 rows.
        let size = std::fs::metadata(p.raw_path(dataset, ext)).unwrap().len();
        assert!(
            ext == "parquet" || size > 2 << 20,
            "{dataset} is {size} bytes"
        );
        for ratio in ["0.5", "0"] {
            let args = [
                "validate",
                dataset,
                "--ds",
                DS,
                "--force",
                "--max-invalid-ratio",
                ratio,
            ];
            let whole = p.run(&args);
            let code = whole.code;
            assert!(code == 0 || code == 65, "{dataset}: {}", whole.stdout);
            let batched = p.run(&[&args[..], &["--memory-limit", "32MiB"]].concat());
            assert_eq!(batched.code, code, "{dataset}: {}", batched.stdout);
            assert!(
                batched.stderr.contains("checked a batch"),
                "{dataset}: one batch only: {}",
                batched.stderr
            );
            assert!(!whole.stderr.contains("checked a batch"), "{dataset}");
            assert_eq!(
                outcome(&batched.metrics),
                outcome(&whole.metrics),
                "{dataset} ratio {ratio}"
            );
            let failures = whole.metrics["failures"].as_array().unwrap();
            assert!(
                failures.iter().any(|f| f["check"] == "unique"),
                "{dataset}: the generated defects include duplicate keys"
            );
            if ratio == "0" {
                assert_eq!(whole.metrics["status"], "rejected", "{dataset}");
                assert_eq!(whole.metrics["invalid_rows"], whole.metrics["rows_in"]);
            }
        }
    }
}

#[test]
fn memory_limits_are_read_with_units_and_bad_ones_are_usage_errors() {
    let p = Pipeline::new();
    p.ok(&["generate", "campaigns", "--ds", DS], 0);
    for limit in ["1073741824", "512MiB", "2G", "4gib"] {
        p.ok(
            &[
                "validate",
                "campaigns",
                "--ds",
                DS,
                "--force",
                "--memory-limit",
                limit,
            ],
            0,
        );
    }
    for bad in ["0", "lots", "12X", "-5", "99999999T"] {
        let flag = format!("--memory-limit={bad}");
        let run = p.run(&["validate", "campaigns", "--ds", DS, &flag]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("memory-limit"), "{bad}: {}", run.stderr);
    }
}
