//! Bad input gets a one-line error and the documented exit code, never a
//! panic; a bad file is quarantined whole with its reason.

mod common;

use common::{DS, Pipeline, parquet_rows};

const CONTACTS_HEADER: &str = "contact_id,first_name,last_name,email,company,industry,lead_source,job_title,country,opted_in,signup_date";
const CONTACT_ROW: &str = "0b5c7f0e-8a43-4b2a-9d1e-0c6f3f5a8e21,Ada,Lovelace,ada@example.com,Acme Labs,Internet,email,Engineer,France,true,2025-05-25T10:00:00";

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("\"panic\""), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let p = Pipeline::new();
    for args in [
        vec!["generate", "leads", "--ds", DS],
        vec!["generate", "contacts", "--ds", "2025-13-01"],
        vec!["generate", "contacts", "--ds", "../x"],
        vec!["validate", "contacts", "--ds", "2025-05-25/../../etc"],
        vec!["generate", "contacts", "--ds", DS, "--scale-factor", "-1"],
        vec![
            "validate",
            "contacts",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "2",
        ],
        vec!["run", "--from", "2025-05-25", "--to", "2025-05-20"],
        vec!["run"],
        vec!["frobnicate"],
    ] {
        let run = p.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_no_panic(&run.stderr);
    }
    assert!(!p.landing().exists(), "nothing written on a usage error");
}

#[test]
fn a_missing_input_is_nothing_to_do() {
    let p = Pipeline::new();
    let m = p.ok(&["validate", "contacts", "--ds", DS], 99);
    assert_eq!(m["status"], "skipped");
    assert!(m["error"].as_str().unwrap().contains("no raw file"));
    p.ok(&["upload", "contacts", "--ds", DS], 99);
    // A fact file whose referenced dimensions are absent cannot be checked.
    p.ok(&["generate", "form_fills", "--ds", DS], 0);
    p.ok(&["validate", "form_fills", "--ds", DS], 99);
}

#[test]
fn bad_settings_are_configuration_errors() {
    let p = Pipeline::new();
    let run = p
        .command(&["generate", "forms", "--ds", DS])
        .env("PIPELINE_LAKE_URL", "ftp://example/lake")
        .output()
        .unwrap();
    let run = common::finish(run);
    assert_eq!(run.code, 78);
    assert!(
        run.metrics["error"]
            .as_str()
            .unwrap()
            .contains("PIPELINE_LAKE_URL")
    );
    let run = common::finish(
        p.command(&["generate", "forms", "--ds", DS])
            .env(
                "PIPELINE_METADATA_URL",
                "sqlite:///proc/no/such/dir/metadata.db",
            )
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 78, "{}", run.stderr);
}

/// Replaces a generated raw file with `bytes`, validates, and checks that
/// the file is rejected and quarantined whole with a reason mentioning `why`.
fn rejected(p: &Pipeline, dataset: &str, ext: &str, bytes: &[u8], why: &str) {
    std::fs::write(p.raw_path(dataset, ext), bytes).unwrap();
    let run = p.run(&["validate", dataset, "--ds", DS, "--force"]);
    assert_eq!(run.code, 65, "{dataset} {why}: {}", run.stdout);
    assert_no_panic(&run.stderr);
    assert_eq!(run.metrics["status"], "rejected");
    let error = run.metrics["error"].as_str().unwrap();
    assert!(error.contains(why), "{error:?} should mention {why:?}");
    assert!(!error.contains('\n'));
    assert!(!p.slice_path(&p.landing(), "valid-data", dataset).exists());
    let quarantine = p.slice_path(&p.landing(), "quarantine-data", dataset);
    assert!(
        parquet_rows(&quarantine) > 0,
        "{dataset}: rejected file quarantined"
    );
}

#[test]
fn unreadable_or_misshapen_files_are_rejected_and_quarantined() {
    let p = Pipeline::new();
    p.generate_all();
    let header_without_email = CONTACTS_HEADER.replace(",email", "");
    let row_without_email = CONTACT_ROW.replace(",ada@example.com", "");
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("contacts", "csv", b"".to_vec(), "empty"),
        (
            "contacts",
            "csv",
            format!("{header_without_email}\n{row_without_email}\n").into_bytes(),
            "missing=[email]",
        ),
        (
            "contacts",
            "csv",
            format!("{CONTACTS_HEADER},score\n{CONTACT_ROW},5\n").into_bytes(),
            "extra=[score]",
        ),
        (
            "contacts",
            "csv",
            format!("{}\n{CONTACT_ROW}\n", CONTACTS_HEADER.replace("email", "e_mail")).into_bytes(),
            "missing=[email] extra=[e_mail]",
        ),
        (
            "contacts",
            "csv",
            format!("{CONTACTS_HEADER}\n{}\n", CONTACT_ROW.replace("true", "maybe")).into_bytes(),
            "opted_in",
        ),
        (
            "contacts",
            "csv",
            [CONTACTS_HEADER.as_bytes(), b"\n\xff\xfe\xfd,", CONTACT_ROW.as_bytes()].concat(),
            "unreadable",
        ),
        ("pages", "jsonl", b"{\"page_id\": \"p1\", \"page_url\": \"u\", \"page_title\": \"t\"}\n{\"page_id\": \"p2\", \"page_u".to_vec(), "unreadable"),
        ("pages", "jsonl", b"not json at all\n".to_vec(), "unreadable"),
        ("pages", "jsonl", b"{\"page_id\": [1, 2], \"page_url\": \"u\", \"page_title\": \"t\"}\n".to_vec(), "cast"),
    ];
    for (dataset, ext, bytes, why) in cases {
        rejected(&p, dataset, ext, &bytes, why);
    }
}

#[test]
fn a_truncated_parquet_file_is_rejected() {
    let p = Pipeline::new();
    p.generate_all();
    let path = p.raw_path("form_fills", "parquet");
    let bytes = std::fs::read(&path).unwrap();
    rejected(
        &p,
        "form_fills",
        "parquet",
        &bytes[..bytes.len() / 2],
        "unreadable",
    );
    // The quarantined blob keeps the original bytes.
    use polars::prelude::*;
    let file =
        std::fs::File::open(p.slice_path(&p.landing(), "quarantine-data", "form_fills")).unwrap();
    let q = ParquetReader::new(file).finish().unwrap();
    let content = q
        .column("content")
        .unwrap()
        .binary()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(content, &bytes[..bytes.len() / 2]);
}

#[test]
fn harmless_oddities_are_handled() {
    let p = Pipeline::new();
    p.generate_all();
    // A byte-order mark, reordered columns and a few uncastable values:
    // the file is read, bad values quarantined row by row.
    let reordered_header =
        CONTACTS_HEADER.replacen("contact_id,first_name", "first_name,contact_id", 1);
    let reordered_row = CONTACT_ROW.replacen(
        "0b5c7f0e-8a43-4b2a-9d1e-0c6f3f5a8e21,Ada",
        "Ada,0b5c7f0e-8a43-4b2a-9d1e-0c6f3f5a8e21",
        1,
    );
    let second = reordered_row
        .replace("0b5c7f0e", "1b5c7f0e")
        .replace("2025-05-25T10:00:00", "not a time");
    let csv = format!("\u{feff}{reordered_header}\n{reordered_row}\n{second}\n");
    std::fs::write(p.raw_path("contacts", "csv"), csv).unwrap();
    let m = p.ok(
        &[
            "validate",
            "contacts",
            "--ds",
            DS,
            "--max-invalid-ratio",
            "0.5",
            "--force",
        ],
        0,
    );
    assert_eq!(m["rows_in"], 2);
    assert_eq!(m["rows_out"], 1);
    assert_eq!(m["failed"]["type_cast"], 1);

    // NDJSON with a BOM and a blank trailing line.
    let pages = std::fs::read(p.raw_path("pages", "jsonl")).unwrap();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&pages);
    with_bom.extend_from_slice(b"\n");
    std::fs::write(p.raw_path("pages", "jsonl"), with_bom).unwrap();
    let m = p.ok(&["validate", "pages", "--ds", DS, "--force"], 0);
    assert_eq!(m["rows_out"], 50);
}
