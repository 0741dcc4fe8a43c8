//! The contract file: dbt's sources YAML, read with serde_yaml into the
//! catalogue. Errors name the file, the line and the field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Column, ColumnType, Format, Rule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct File {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    sources: Vec<Source>,
}

#[derive(Deserialize)]
pub(super) struct Source {
    name: String,
    #[serde(default)]
    tables: Vec<Table>,
}

#[derive(Deserialize)]
pub(super) struct Table {
    name: String,
    #[serde(default)]
    description: String,
    meta: TableMeta,
    columns: Vec<ColumnEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableMeta {
    format: Format,
    key: String,
    #[serde(default)]
    date_column: Option<String>,
}

#[derive(Deserialize)]
struct ColumnEntry {
    name: String,
    data_type: ColumnType,
    #[serde(default, alias = "tests")]
    data_tests: Vec<TestEntry>,
}

/// `not_null`, or `{accepted_values: {values: [...]}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TestEntry {
    Name(String),
    WithArguments(BTreeMap<String, serde_yaml::Value>),
}

/// A table of the contracts, before it is placed in the catalogue.
pub(super) struct TableSpec {
    pub name: String,
    pub description: String,
    pub format: Format,
    pub key: String,
    pub date_column: Option<String>,
    pub columns: Vec<Column>,
}

/// The tables of one contract file; `origin` names it in errors.
pub(super) fn parse(origin: &str, text: &str) -> Result<Vec<TableSpec>, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    let mut tables = Vec::new();
    for source in file.sources {
        if source.name != "raw" {
            return Err(format!(
                "{origin}: line {}: source {:?}: only the source `raw` holds datasets",
                line_of(text, &[&source.name]),
                source.name
            ));
        }
        for table in source.tables {
            tables.push(table_spec(origin, text, table)?);
        }
    }
    Ok(tables)
}

fn table_spec(origin: &str, text: &str, table: Table) -> Result<TableSpec, String> {
    let at = |names: &[&str], field: &str, problem: String| {
        format!(
            "{origin}: line {}: table {}{field}: {problem}",
            line_of(text, names),
            table.name
        )
    };
    let mut columns = Vec::with_capacity(table.columns.len());
    for entry in &table.columns {
        let mut column = Column {
            name: leak(&entry.name),
            ty: entry.data_type,
            nullable: true,
            rules: &[],
        };
        let mut rules = Vec::new();
        for test in &entry.data_tests {
            let place = [table.name.as_str(), entry.name.as_str()];
            let field = format!(", column {}, data_tests", entry.name);
            match rule(test) {
                Ok(None) => column.nullable = false,
                Ok(Some(rule)) => rules.push(rule),
                Err(problem) => return Err(at(&place, &field, problem)),
            }
        }
        column.rules = Vec::leak(rules);
        columns.push(column);
    }
    let known = |name: &str| columns.iter().any(|c| c.name == name);
    if !known(&table.meta.key) {
        return Err(at(
            &[&table.name],
            ", meta.key",
            format!("no column {}", table.meta.key),
        ));
    }
    if let Some(date) = table.meta.date_column.as_deref().filter(|d| !known(d)) {
        return Err(at(
            &[&table.name],
            ", meta.date_column",
            format!("no column {date}"),
        ));
    }
    Ok(TableSpec {
        name: table.name,
        description: table.description,
        format: table.meta.format,
        key: table.meta.key,
        date_column: table.meta.date_column,
        columns,
    })
}

/// The rule a test declares; `None` for `not_null`, which makes the column
/// required rather than adding a rule. `unique` is the key's own check.
fn rule(test: &TestEntry) -> Result<Option<Rule>, String> {
    let (name, args) = match test {
        TestEntry::Name(name) => (name.as_str(), None),
        TestEntry::WithArguments(map) if map.len() == 1 => {
            let (name, args) = map.iter().next().expect("one entry");
            (name.as_str(), Some(args))
        }
        TestEntry::WithArguments(_) => return Err("a test is one name with its arguments".into()),
    };
    let arg = |key: &str| -> Result<&serde_yaml::Value, String> {
        args.and_then(|a| a.get(key))
            .ok_or_else(|| format!("{name}: needs `{key}`"))
    };
    let number = |key: &str| -> Result<Option<f64>, String> {
        match args.and_then(|a| a.get(key)) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{name}.{key}: not a number")),
        }
    };
    let text = |key: &str| -> Result<&'static str, String> {
        arg(key)?
            .as_str()
            .map(leak)
            .ok_or_else(|| format!("{name}.{key}: not text"))
    };
    Ok(Some(match name {
        "not_null" => return Ok(None),
        "unique" => Rule::Unique,
        "email_format" => Rule::Email,
        "uuid_format" => Rule::Uuid,
        "range" => Rule::Range {
            min: number("min")?,
            max: number("max")?,
        },
        "accepted_values" => {
            let values = arg("values")?
                .as_sequence()
                .ok_or_else(|| "accepted_values.values: not a list".to_string())?
                .iter()
                .map(|v| match v {
                    serde_yaml::Value::String(s) => Ok(leak(s)),
                    other => serde_yaml::to_string(other)
                        .map(|s| leak(s.trim()))
                        .map_err(|e| e.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Rule::AcceptedValues(Vec::leak(values))
        }
        "relationships" => Rule::References {
            dataset: source_table(text("to")?)
                .ok_or_else(|| "relationships.to: expected source('raw', 'TABLE')".to_string())?,
            field: text("field")?,
        },
        "true_exactly_when" => Rule::TrueExactlyWhen {
            column: text("column")?,
            value: arg("value")?
                .as_i64()
                .ok_or_else(|| "true_exactly_when.value: not a whole number".to_string())?,
        },
        other => return Err(format!("unknown test {other:?}")),
    }))
}

/// `TABLE` of `source('raw', 'TABLE')`.
fn source_table(to: &'static str) -> Option<&'static str> {
    let inner = to.trim().strip_prefix("source(")?.strip_suffix(')')?;
    let (source, table) = inner.split_once(',')?;
    let unquote = |s: &'static str| s.trim().trim_matches(|c| c == '\'' || c == '"');
    (unquote(source) == "raw").then(|| unquote(table))
}

/// The line (1-based) of the first `name: X` of `names[0]`, then of each
/// further name after it: where a table or one of its columns is declared.
fn line_of(text: &str, names: &[&str]) -> usize {
    let mut line = 0;
    for name in names {
        let declared = |l: &str| {
            let l = l.trim_start().trim_start_matches("- ").trim();
            l.strip_prefix("name:")
                .is_some_and(|v| v.trim().trim_matches(|c| c == '\'' || c == '"') == *name)
        };
        if let Some(found) = text.lines().skip(line).position(declared) {
            line += found + 1;
        }
    }
    line.max(1)
}

/// Contracts are read once per process and live as long as it does.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}
