//! The names dbt gives generic tests (dbt-core's
//! `synthesize_generic_test_names`), so that a test is called the same in
//! this binary's metrics as in dbt's run_results.json.

use std::sync::LazyLock;

use regex::Regex;

/// The full name of a generic test: `<test>_<target>_<arguments>`, where
/// arguments are flattened in key order, `model` left out, and every run
/// of other characters than `[0-9a-zA-Z_]` made `_`. `test` is already
/// `source_<name>` for a test on a source, and `target` is the model, or
/// `<source>_<table>`.
pub(crate) fn generic_test_name(
    test: &str,
    target: &str,
    args: &[(String, serde_yaml::Value)],
) -> String {
    let mut sorted: Vec<&(String, serde_yaml::Value)> =
        args.iter().filter(|(k, _)| k != "model").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    static UNSAFE_CHARS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("[^0-9a-zA-Z_]+").expect("valid regex"));
    let mut flat = Vec::new();
    for (_, value) in sorted {
        match value {
            serde_yaml::Value::Mapping(map) => flat.extend(map.values().map(python_str)),
            serde_yaml::Value::Sequence(items) => flat.extend(items.iter().map(python_str)),
            other => flat.push(python_str(other)),
        }
    }
    let clean: Vec<String> = flat
        .iter()
        .map(|part| UNSAFE_CHARS.replace_all(part, "_").into_owned())
        .collect();
    format!("{test}_{target}_{}", clean.join("__"))
}

/// What Python's `str()` gives for a value YAML parsed.
fn python_str(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Null => "None".into(),
        serde_yaml::Value::Bool(true) => "True".into(),
        serde_yaml::Value::Bool(false) => "False".into(),
        serde_yaml::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Sequence(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        serde_yaml::Value::Mapping(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        serde_yaml::Value::Tagged(tagged) => python_str(&tagged.value),
    }
}

fn python_repr(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::String(s) => format!("'{s}'"),
        other => python_str(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(yaml: &str) -> Vec<(String, serde_yaml::Value)> {
        let map: serde_yaml::Mapping = serde_yaml::from_str(yaml).unwrap();
        map.into_iter()
            .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
            .collect()
    }

    /// Names dbt-core 1.11 gave these tests in a real run.
    #[test]
    fn names_match_dbt_core() {
        let cases = [
            (
                "unique",
                "mart_contacts",
                "column_name: contact_id",
                "unique_mart_contacts_contact_id",
            ),
            (
                "accepted_values",
                "mart_contacts",
                "{column_name: status, values: [active, inactive]}",
                "accepted_values_mart_contacts_status__active__inactive",
            ),
            (
                "accepted_values",
                "mart_contacts",
                "{column_name: account_id, values: [10], quote: false}",
                "accepted_values_mart_contacts_account_id__False__10",
            ),
            (
                "relationships",
                "mart_contacts",
                "{column_name: account_id, to: \"ref('raw_accounts')\", field: account_id}",
                "relationships_mart_contacts_account_id__account_id__ref_raw_accounts_",
            ),
            (
                "source_accepted_values",
                "raw_raw_contacts",
                "{column_name: status, values: [ACTIVE, inactive], normalized: true}",
                "source_accepted_values_raw_raw_contacts_status__True__ACTIVE__inactive",
            ),
        ];
        for (test, target, yaml, expected) in cases {
            assert_eq!(generic_test_name(test, target, &args(yaml)), expected);
        }
    }

    #[test]
    fn numbers_print_as_python_prints_them() {
        let name = generic_test_name(
            "source_range",
            "raw_t",
            &args("{column_name: v, min: 0, max: 2.5}"),
        );
        assert_eq!(name, "source_range_raw_t_v__2_5__0");
        let name = generic_test_name("range", "t", &args("{column_name: v, min: 100.0}"));
        assert_eq!(name, "range_t_v__100_0");
    }
}
