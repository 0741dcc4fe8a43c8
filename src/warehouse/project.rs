//! The SQL project under sql/, embedded at build time: setup DDL, models
//! (staging, then marts) ordered by their dependencies, and data tests.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

include!(concat!(env!("OUT_DIR"), "/sql_files.rs"));

/// The Snowflake setup script; its CREATE SCHEMA / CREATE TABLE statements
/// are also the DuckDB schema.
pub(crate) const SETUP: &str = "snowflake/setup.sql";

/// A schema a model builds into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    /// `CREATE OR REPLACE TABLE STG.<model> AS ...` for the ds.
    Staging,
    /// `MERGE INTO MART.<model> ...`: incremental.
    Mart,
}

impl Layer {
    pub(crate) fn schema(self) -> &'static str {
        match self {
            Layer::Staging => "STG",
            Layer::Mart => "MART",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub name: String,
    pub layer: Layer,
    /// `SCHEMA.TABLE` the model writes, upper case.
    pub target: String,
    pub sql: &'static str,
    /// Targets of other models this one reads.
    pub depends_on: Vec<String>,
}

/// Whether a failing test fails the transform or only warns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warn,
}

#[derive(Clone, Debug)]
pub(crate) struct DataTest {
    pub name: String,
    pub sql: &'static str,
    pub severity: Severity,
}

pub(crate) fn file(path: &str) -> &'static str {
    SQL_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("sql/{path} is embedded"))
}

/// `dir/name.sql` files directly under `dir`, as (stem, text).
fn files_in(dir: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    SQL_FILES.iter().filter_map(move |(path, text)| {
        let rest = path.strip_prefix(dir)?.strip_prefix('/')?;
        let stem = rest.strip_suffix(".sql")?;
        (!stem.contains('/')).then_some((stem, *text))
    })
}

/// Every model, in an order where each runs after the models it reads:
/// staging before marts, then by dependency, then by name.
pub(crate) fn models() -> Result<Vec<Model>> {
    let mut all = Vec::new();
    for (dir, layer) in [
        ("models/staging", Layer::Staging),
        ("models/marts", Layer::Mart),
    ] {
        for (stem, sql) in files_in(dir) {
            all.push(Model {
                name: stem.to_string(),
                layer,
                target: format!("{}.{}", layer.schema(), stem.to_ascii_uppercase()),
                sql,
                depends_on: Vec::new(),
            });
        }
    }
    let targets: Vec<String> = all.iter().map(|m| m.target.clone()).collect();
    for model in &mut all {
        model.depends_on = references(model.sql)
            .into_iter()
            .filter(|t| *t != model.target && targets.contains(t))
            .collect();
    }
    order(all)
}

/// Kahn's algorithm; ties broken by (layer, name) so the order is stable.
fn order(models: Vec<Model>) -> Result<Vec<Model>> {
    let mut pending: BTreeMap<(Layer, String), Model> = models
        .into_iter()
        .map(|m| ((m.layer, m.name.clone()), m))
        .collect();
    let mut ordered: Vec<Model> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .find(|(_, m)| {
                m.depends_on
                    .iter()
                    .all(|d| ordered.iter().any(|done| done.target == *d))
            })
            .map(|(k, _)| k.clone());
        let Some(key) = ready else {
            let stuck: Vec<_> = pending.values().map(|m| m.name.as_str()).collect();
            bail!("sql/models: dependency cycle among {}", stuck.join(", "));
        };
        ordered.push(pending.remove(&key).expect("key was just found"));
    }
    Ok(ordered)
}

/// `STG.X` and `MART.X` names a statement mentions, upper case.
fn references(sql: &str) -> Vec<String> {
    let text = strip_comments(sql).to_ascii_uppercase();
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for schema in ["STG.", "MART."] {
        for (at, _) in text.match_indices(schema) {
            if at > 0 && is_ident(bytes[at - 1]) {
                continue;
            }
            let start = at + schema.len();
            let len = bytes[start..].iter().take_while(|b| is_ident(**b)).count();
            if len > 0 {
                found.push(text[at..start + len].to_string());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `sql` with every whole mention of the table `from` (`SCHEMA.NAME`, any
/// case) replaced by `to`.
pub(crate) fn rename_table(sql: &str, from: &str, to: &str) -> String {
    let upper = sql.to_ascii_uppercase();
    let from = from.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (at, _) in upper.match_indices(&from) {
        let end = at + from.len();
        let whole =
            (at == 0 || !is_ident(bytes[at - 1])) && bytes.get(end).is_none_or(|b| !is_ident(*b));
        if whole && at >= copied {
            out.push_str(&sql[copied..at]);
            out.push_str(to);
            copied = end;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

/// The data tests: queries returning offending rows. A `-- severity: warn`
/// line makes a test warn instead of fail.
pub(crate) fn tests() -> Vec<DataTest> {
    files_in("tests")
        .map(|(stem, sql)| DataTest {
            name: stem.to_string(),
            sql,
            severity: if sql
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case("-- severity: warn"))
            {
                Severity::Warn
            } else {
                Severity::Error
            },
        })
        .collect()
}

/// Fills `{{ name }}` placeholders; an unknown name is an error, so a typo
/// in a model never reaches the warehouse.
pub(crate) fn render(sql: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find("}}") else {
            bail!("unclosed {{{{ in SQL");
        };
        let name = rest[open + 2..open + close].trim();
        let Some((_, value)) = vars.iter().find(|(k, _)| *k == name) else {
            bail!("unknown SQL placeholder {{{{ {name} }}}}");
        };
        out.push_str(value);
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Removes `--` comments outside string literals.
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        let mut in_string = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'\'' => in_string = !in_string,
                b'-' if !in_string && bytes.get(i + 1) == Some(&b'-') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// The statements of a script, without comments, split on `;` outside
/// string literals (the Snowflake API takes one statement per request).
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let text = strip_comments(sql);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    for c in text.chars() {
        match c {
            '\'' => in_string = !in_string,
            ';' if !in_string => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_run_after_what_they_read() {
        let models = models().unwrap();
        assert_eq!(models.len(), 12, "six staging models and six marts");
        for (i, m) in models.iter().enumerate() {
            for dep in &m.depends_on {
                let at = models.iter().position(|o| &o.target == dep).unwrap();
                assert!(at < i, "{} runs before {dep}", m.name);
            }
        }
        let fills = models.iter().find(|m| m.name == "mart_form_fills").unwrap();
        assert_eq!(
            fills.depends_on,
            ["MART.MART_FORMS", "STG.STG_FORM_FILLS"],
            "form fills join the forms mart for FORM_TYPE"
        );
    }

    #[test]
    fn every_model_writes_the_table_it_is_named_after() {
        for m in models().unwrap() {
            let sql = strip_comments(m.sql).to_ascii_uppercase();
            let writes = match m.layer {
                Layer::Staging => format!("CREATE OR REPLACE TABLE {} AS", m.target),
                Layer::Mart => format!("MERGE INTO {} ", m.target),
            };
            assert!(
                sql.contains(&writes),
                "{} does not contain {writes:?}",
                m.name
            );
        }
    }

    #[test]
    fn a_dependency_cycle_is_reported() {
        let model = |name: &str, dep: &str| Model {
            name: name.into(),
            layer: Layer::Mart,
            target: format!("MART.{}", name.to_uppercase()),
            sql: "",
            depends_on: vec![dep.into()],
        };
        let err = order(vec![model("a", "MART.B"), model("b", "MART.A")]).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn tests_carry_their_severity() {
        let tests = tests();
        let budget = tests
            .iter()
            .find(|t| t.name == "form_fills_row_count_budget")
            .unwrap();
        assert_eq!(budget.severity, Severity::Warn);
        let keys = tests.iter().filter(|t| t.name.ends_with("_key")).count();
        assert_eq!(keys, 6, "a key test per mart");
        assert!(
            tests
                .iter()
                .all(|t| t.name == budget.name || t.severity == Severity::Error)
        );
    }

    #[test]
    fn placeholders_must_be_known() {
        let vars = [("ds", "2025-05-25")];
        assert_eq!(
            render("WHERE DS = '{{ ds }}'", &vars).unwrap(),
            "WHERE DS = '2025-05-25'"
        );
        assert!(render("{{ dss }}", &vars).is_err());
        assert!(render("{{ ds", &vars).is_err());
    }

    #[test]
    fn statements_split_outside_strings_and_comments() {
        let script = "-- a; comment\nCREATE SCHEMA A;\nINSERT INTO T VALUES ('x;y'); -- tail;\n\n";
        assert_eq!(
            statements(script),
            ["CREATE SCHEMA A", "INSERT INTO T VALUES ('x;y')"]
        );
    }

    #[test]
    fn references_ignore_longer_names_and_comments() {
        let sql = "-- MART.NOT_ME\nSELECT * FROM STG.STG_A JOIN XMART.B ON 1 JOIN mart.mart_c ON 1";
        assert_eq!(
            rename_table(sql, "STG.STG_A", "STG.STG_A_20250525"),
            "-- MART.NOT_ME\nSELECT * FROM STG.STG_A_20250525 JOIN XMART.B ON 1 JOIN mart.mart_c ON 1"
        );
        assert_eq!(
            rename_table("FROM stg.stg_a_b, STG.STG_A", "STG.STG_A", "S.T"),
            "FROM stg.stg_a_b, S.T"
        );
        assert_eq!(references(sql), ["MART.MART_C", "STG.STG_A"]);
    }
}
