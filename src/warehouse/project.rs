//! The files under sql/, embedded at build time: the dbt project that
//! transform runs (or one from a folder, PIPELINE_DBT_PROJECT_DIR), and
//! the setup and migration scripts.

use std::path::Path;

use anyhow::Result;
use minijinja::{Environment, UndefinedBehavior};

use crate::dbt::Files;
use crate::exit;

include!(concat!(env!("OUT_DIR"), "/sql_files.rs"));

/// The Snowflake setup script; its CREATE SCHEMA / CREATE TABLE statements
/// are also the DuckDB schema.
pub(crate) const SETUP: &str = "snowflake/setup.sql";

pub(crate) fn file(path: &str) -> &'static str {
    SQL_FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("sql/{path} is embedded"))
}

/// The dbt project's files: from `dir` when given, else the embedded ones.
pub(crate) fn dbt_files(dir: Option<&Path>) -> Result<Files> {
    let Some(dir) = dir else {
        return Ok(SQL_FILES
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect());
    };
    if !dir.join("dbt_project.yml").is_file() {
        return Err(exit::config(format!(
            "PIPELINE_DBT_PROJECT_DIR: {} holds no dbt_project.yml",
            dir.display()
        )));
    }
    let mut files = Files::new();
    read_folder(dir, dir, &mut files)?;
    Ok(files)
}

/// SQL and YAML files under `folder`, by path relative to `root`; dbt's
/// output and package folders and hidden entries are skipped.
fn read_folder(root: &Path, folder: &Path, files: &mut Files) -> Result<()> {
    let unreadable = |path: &Path, e: std::io::Error| {
        exit::config(format!("cannot read {}: {e}", path.display()))
    };
    for entry in std::fs::read_dir(folder).map_err(|e| unreadable(folder, e))? {
        let path = entry.map_err(|e| unreadable(folder, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "logs" | "dbt_packages") {
                read_folder(root, &path, files)?;
            }
        } else if name.ends_with(".sql") || name.ends_with(".yml") || name.ends_with(".yaml") {
            let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            files.insert(relative.to_string_lossy().replace('\\', "/"), text);
        }
    }
    Ok(())
}

/// Fills a setup script's `{{ name }}` placeholders; an unknown name is
/// an error, so a typo never reaches the warehouse.
pub(crate) fn render(sql: &str, vars: &[(&str, &str)]) -> Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let context: std::collections::BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.render_str(sql, context)
        .map_err(|e| anyhow::anyhow!("SQL template: {e}"))
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
    fn placeholders_must_be_known() {
        let vars = [("database", "MARKETING")];
        assert_eq!(
            render("USE {{ database }};", &vars).unwrap(),
            "USE MARKETING;"
        );
        assert!(render("{{ databse }}", &vars).is_err());
        assert!(render("{{ database", &vars).is_err());
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
    fn the_embedded_project_is_the_dbt_project() {
        let files = dbt_files(None).unwrap();
        assert!(files.contains_key("dbt_project.yml"));
        assert!(files.contains_key("models/sources/raw.yml"));
        assert!(files.keys().all(|p| !p.starts_with("target/")));
    }
}
