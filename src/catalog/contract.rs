//! The contract file: dbt's sources YAML, read with serde_yaml into the
//! catalogue. Errors name the file, the line and the field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    Column, ColumnType, Format, Rule, Severity, Test, TestConfig, Threshold, Volume, is_plain_name,
};

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
    #[serde(default)]
    volume: Option<Volume>,
    /// The IANA time zone whose calendar day must equal the ds (freshness
    /// of timestamps); UTC when absent.
    #[serde(default)]
    timezone: Option<String>,
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
    pub volume: Option<Volume>,
    pub timezone: chrono_tz::Tz,
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
    const PLAIN: &str = "is not a plain name (lower-case letters, digits and _, from a letter)";
    if !is_plain_name(&table.name) {
        return Err(at(&[&table.name], "", PLAIN.into()));
    }
    let mut columns = Vec::with_capacity(table.columns.len());
    for entry in &table.columns {
        let place = [table.name.as_str(), entry.name.as_str()];
        if !is_plain_name(&entry.name) {
            return Err(at(
                &place,
                &format!(", column {:?}", entry.name),
                PLAIN.into(),
            ));
        }
        let field = format!(", column {}, data_tests", entry.name);
        let tests = entry
            .data_tests
            .iter()
            .map(test)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|problem| at(&place, &field, problem))?;
        columns.push(Column {
            name: leak(&entry.name),
            ty: entry.data_type,
            nullable: !tests.iter().any(|t| t.rule == Rule::NotNull),
            tests: Vec::leak(tests),
        });
    }
    let known = |name: &str| columns.iter().any(|c| c.name == name);
    for (entry, column) in table.columns.iter().zip(&columns) {
        for test in column.tests {
            if let Rule::TrueExactlyWhen { column: other, .. } = test.rule
                && !known(other)
            {
                let place = [table.name.as_str(), entry.name.as_str()];
                let field = format!(", column {}, data_tests", entry.name);
                return Err(at(
                    &place,
                    &field,
                    format!("true_exactly_when: no column {other}"),
                ));
            }
        }
    }
    if !known(&table.meta.key) {
        return Err(at(
            &[&table.name],
            ", meta.key",
            format!("no column {}", table.meta.key),
        ));
    }
    let timezone = match table.meta.timezone.as_deref() {
        None => chrono_tz::UTC,
        Some(name) => name.parse().map_err(|_| {
            at(
                &[&table.name],
                ", meta.timezone",
                format!("{name:?} is not an IANA time zone such as Europe/Berlin"),
            )
        })?,
    };
    if let Some(volume) = &table.meta.volume {
        let bounds = [volume.min_ratio, volume.max_ratio];
        let ordered = volume
            .min_ratio
            .zip(volume.max_ratio)
            .is_none_or(|(lo, hi)| lo <= hi);
        if bounds.iter().flatten().any(|r| !r.is_finite() || *r < 0.0) || !ordered {
            return Err(at(
                &[&table.name],
                ", meta.volume",
                "min_ratio and max_ratio are ratios >= 0, min_ratio <= max_ratio".into(),
            ));
        }
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
        volume: table.meta.volume,
        timezone,
        columns,
    })
}

/// The rule a test declares and its `config`.
fn test(entry: &TestEntry) -> Result<Test, String> {
    let (name, args) = match entry {
        TestEntry::Name(name) => (name.as_str(), None),
        TestEntry::WithArguments(map) if map.len() == 1 => {
            let (name, args) = map.iter().next().expect("one entry");
            (name.as_str(), Some(args))
        }
        TestEntry::WithArguments(_) => return Err("a test is one name with its arguments".into()),
    };
    let config = match args.and_then(|a| a.get("config")) {
        None => TestConfig::default(),
        Some(config) => test_config(name, config)?,
    };
    Ok(Test {
        rule: rule(name, args)?,
        config,
    })
}

/// `config: {severity, warn_if, error_if}`.
fn test_config(name: &str, config: &serde_yaml::Value) -> Result<TestConfig, String> {
    let mut out = TestConfig::default();
    if let Some(value) = config.get("severity") {
        out.severity = serde_yaml::from_value::<Severity>(value.clone())
            .map_err(|_| format!("{name}.config.severity: expected warn or error"))?;
    }
    let threshold = |key: &str| -> Result<Option<Threshold>, String> {
        let Some(value) = config.get(key) else {
            return Ok(None);
        };
        let text = match value {
            serde_yaml::Value::String(s) => s.clone(),
            other => format!(
                "= {}",
                serde_yaml::to_string(other).unwrap_or_default().trim()
            ),
        };
        Threshold::parse(&text).map(Some).ok_or_else(|| {
            format!(
                "{name}.config.{key}: {text:?} is not a condition such as \"> 10\" or \">= 0.1%\""
            )
        })
    };
    out.warn_if = threshold("warn_if")?;
    out.error_if = threshold("error_if")?;
    Ok(out)
}

/// The rule a test names, from its arguments.
fn rule(name: &str, args: Option<&serde_yaml::Value>) -> Result<Rule, String> {
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
    Ok(match name {
        "not_null" => Rule::NotNull,
        "unique" => Rule::Unique,
        "email_format" => Rule::Email,
        "uuid_format" => Rule::Uuid,
        "matches_pattern" => {
            let pattern = text("pattern")?;
            regex::Regex::new(pattern).map_err(|e| {
                format!(
                    "matches_pattern.pattern: {}",
                    e.to_string().replace('\n', " ")
                )
            })?;
            Rule::Pattern(pattern)
        }
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
            let normalized = match args.and_then(|a| a.get("normalized")) {
                None => false,
                Some(flag) => flag
                    .as_bool()
                    .ok_or_else(|| "accepted_values.normalized: not true or false".to_string())?,
            };
            let values = match normalized {
                true => values.iter().map(|v| leak(&super::normalize(v))).collect(),
                false => values,
            };
            Rule::AcceptedValues {
                values: Vec::leak(values),
                normalized,
            }
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
    })
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
