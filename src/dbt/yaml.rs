//! Loading a project: `dbt_project.yml`, the YAML files beside the models
//! (model descriptions and tests, sources), and every model and test
//! compiled once to find its `config()` and dependencies, as `dbt parse`.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_yaml::{Mapping, Value};

use super::jinja::{Compiler, Env, Macros, NodeState, Relations};
use super::naming::generic_test_name;
use super::{
    DataTest, Files, Materialized, Model, ModelConfig, NodeId, Project, Severity, SourceTable,
    Strategy, Target, TestConfig, TestKind,
};

const PROJECT_FILE: &str = "dbt_project.yml";

/// `dbt_project.yml` keys the runner reads or may ignore; any other is an
/// error, so a project never silently loses a setting.
const PROJECT_KEYS: &[&str] = &[
    "name",
    "version",
    "config-version",
    "profile",
    "model-paths",
    "macro-paths",
    "test-paths",
    "analysis-paths",
    "seed-paths",
    "snapshot-paths",
    "docs-paths",
    "asset-paths",
    "clean-targets",
    "target-path",
    "require-dbt-version",
    "flags",
    "vars",
    "models",
    "data_tests",
    "tests",
];

const MODEL_CONFIG: &[&str] = &[
    "materialized",
    "schema",
    "unique_key",
    "incremental_strategy",
    "cluster_by",
    "transient",
    "enabled",
    "on_schema_change",
    "tags",
    "meta",
    "docs",
    "contract",
];

const TEST_CONFIG: &[&str] = &[
    "severity",
    "warn_if",
    "error_if",
    "fail_calc",
    "where",
    "enabled",
    "tags",
    "meta",
];

pub(super) fn load(
    files: &Files,
    target: Target,
    cli_vars: BTreeMap<String, Value>,
    env: &Env,
) -> Result<Project> {
    let project: Mapping = serde_yaml::from_str(
        files
            .get(PROJECT_FILE)
            .ok_or_else(|| anyhow!("{PROJECT_FILE} not found"))?,
    )
    .with_context(|| PROJECT_FILE.to_string())?;
    for key in project.keys() {
        let key = key.as_str().unwrap_or_default();
        if !PROJECT_KEYS.contains(&key) {
            bail!("{PROJECT_FILE}: `{key}` is not supported by the native runner");
        }
    }
    let name = text(&project, "name")
        .ok_or_else(|| anyhow!("{PROJECT_FILE}: `name` is missing"))?
        .to_string();
    let paths = |key: &str, default: &str| -> Result<Vec<String>> {
        match project.get(key) {
            None => Ok(vec![default.to_string()]),
            Some(value) => serde_yaml::from_value(value.clone())
                .with_context(|| format!("{PROJECT_FILE}: `{key}` must be a list of folders")),
        }
    };
    let model_paths = paths("model-paths", "models")?;
    let macro_paths = paths("macro-paths", "macros")?;
    let test_paths = paths("test-paths", "tests")?;

    let mut vars: BTreeMap<String, Value> = match project.get("vars") {
        None => BTreeMap::new(),
        Some(v) => serde_yaml::from_value(v.clone())
            .with_context(|| format!("{PROJECT_FILE}: `vars` must map names to values"))?,
    };
    vars.extend(cli_vars);

    let macros = Macros::new(
        files
            .iter()
            .filter(|(path, _)| in_folders(path, &macro_paths) && path.ends_with(".sql"))
            .map(|(path, text)| (path.as_str(), text.as_str())),
    );
    let mut loader = Loader {
        project_name: name.clone(),
        target,
        vars,
        env,
        macros,
        relations: Relations::default(),
        model_tree: None,
        test_tree: None,
    };
    // The config trees may use var() and env_var().
    loader.model_tree = project
        .get("models")
        .map(|tree| loader.render_strings(PROJECT_FILE, tree))
        .transpose()?;
    let test_tree = project.get("data_tests").or_else(|| project.get("tests"));
    loader.test_tree = test_tree
        .map(|tree| loader.render_strings(PROJECT_FILE, tree))
        .transpose()?;

    let yaml_files: Vec<(&String, Mapping)> = files
        .iter()
        .filter(|(path, _)| {
            in_folders(path, &model_paths) && (path.ends_with(".yml") || path.ends_with(".yaml"))
        })
        .map(|(path, text)| {
            serde_yaml::from_str::<Mapping>(text)
                .with_context(|| path.to_string())
                .map(|doc| (path, doc))
        })
        .collect::<Result<_>>()?;

    let sources = loader.sources(&yaml_files)?;
    let patches = loader.patches(&yaml_files)?;
    let models = loader.models(files, &model_paths, &patches)?;
    let mut tests = loader.generic_tests(&yaml_files, &models, &model_paths)?;
    tests.extend(loader.singular_tests(files, &test_paths)?);
    let mut names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two tests are named {}", twice[0]);
    }
    Ok(Project {
        target: loader.target,
        models,
        sources,
        tests,
        macros: loader.macros,
        vars: loader.vars,
        relations: loader.relations,
        env: env.clone(),
    })
}

/// A model's entry in a YAML file: its tests, by where they were declared.
struct Patch {
    path: String,
    config: Mapping,
}

struct Loader<'a> {
    project_name: String,
    target: Target,
    vars: BTreeMap<String, Value>,
    env: &'a Env,
    macros: Macros,
    relations: Relations,
    model_tree: Option<Value>,
    test_tree: Option<Value>,
}

impl Loader<'_> {
    fn compiler(&self) -> Compiler<'_> {
        Compiler {
            target: &self.target,
            vars: &self.vars,
            env: self.env,
            macros: &self.macros,
            relations: &self.relations,
        }
    }

    /// Every string of a YAML tree rendered as Jinja.
    fn render_strings(&self, path: &str, value: &Value) -> Result<Value> {
        Ok(match value {
            Value::String(s) if s.contains("{{") || s.contains("{%") => {
                let rendered = self.compiler().render(path, s, &NodeState::default())?;
                Value::String(rendered.sql)
            }
            Value::Sequence(items) => Value::Sequence(
                items
                    .iter()
                    .map(|v| self.render_strings(path, v))
                    .collect::<Result<_>>()?,
            ),
            Value::Mapping(map) => Value::Mapping(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_strings(path, v)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    fn sources(&mut self, yaml_files: &[(&String, Mapping)]) -> Result<Vec<SourceTable>> {
        let mut sources = Vec::new();
        for (path, doc) in yaml_files {
            for source in list(doc, "sources", path)? {
                let source_name =
                    text(&source, "name").ok_or_else(|| anyhow!("{path}: a source has no name"))?;
                let schema = text(&source, "schema").unwrap_or(source_name);
                for table in list(&source, "tables", path)? {
                    let table_name = text(&table, "name")
                        .ok_or_else(|| anyhow!("{path}: a table of {source_name} has no name"))?;
                    let identifier = text(&table, "identifier").unwrap_or(table_name);
                    let relation = format!("{schema}.{identifier}");
                    self.relations.sources.insert(
                        (source_name.to_string(), table_name.to_string()),
                        relation.clone(),
                    );
                    sources.push(SourceTable {
                        source: source_name.to_string(),
                        table: table_name.to_string(),
                        relation,
                    });
                }
            }
        }
        Ok(sources)
    }

    fn patches(&self, yaml_files: &[(&String, Mapping)]) -> Result<BTreeMap<String, Patch>> {
        let mut patches = BTreeMap::new();
        for (path, doc) in yaml_files {
            for entry in list(doc, "models", path)? {
                let name = text(&entry, "name")
                    .ok_or_else(|| anyhow!("{path}: a model entry has no name"))?
                    .to_string();
                let config = match entry.get("config") {
                    Some(Value::Mapping(config)) => config.clone(),
                    Some(_) => bail!("{path}: {name}: `config` must be a mapping"),
                    None => Mapping::new(),
                };
                let patch = Patch {
                    path: path.to_string(),
                    config,
                };
                if patches.insert(name.clone(), patch).is_some() {
                    bail!("{path}: model {name} is described twice");
                }
            }
        }
        Ok(patches)
    }

    fn models(
        &mut self,
        files: &Files,
        model_paths: &[String],
        patches: &BTreeMap<String, Patch>,
    ) -> Result<Vec<Model>> {
        let found: Vec<(&String, &String, String)> = files
            .iter()
            .filter(|(path, _)| in_folders(path, model_paths) && path.ends_with(".sql"))
            .map(|(path, sql)| (path, sql, stem(path)))
            .collect();
        // While parsing, ref() gives the model's name: schemas come from
        // configs, which come from rendering.
        for (_, _, name) in &found {
            self.relations.models.insert(name.clone(), name.clone());
        }
        for name in patches.keys() {
            if !self.relations.models.contains_key(name) {
                bail!(
                    "{}: describes model {name}, which has no SQL file",
                    patches[name].path
                );
            }
        }
        let mut models = Vec::new();
        for (path, sql, name) in found {
            let rendered = self.compiler().render(path, sql, &NodeState::default())?;
            let mut config = tree_config(
                self.model_tree.as_ref(),
                &self.project_name,
                &folders(path, model_paths),
            );
            if let Some(patch) = patches.get(&name) {
                config.extend(patch.config.clone());
            }
            config.extend(rendered.config);
            if disabled(&config) {
                self.relations.models.remove(&name);
                continue;
            }
            let config = model_config(path, &config)?;
            let schema = self.schema_of(path, config.schema.as_deref())?;
            models.push(Model {
                relation: format!("{schema}.{name}"),
                name,
                path: path.clone(),
                sql: sql.clone(),
                config,
                depends_on: rendered.depends_on,
            });
        }
        for model in &models {
            self.relations
                .models
                .insert(model.name.clone(), model.relation.clone());
        }
        for model in &models {
            for dep in &model.depends_on {
                if let NodeId::Model(name) = dep
                    && !models.iter().any(|m| &m.name == name)
                {
                    bail!("{}: ref({name:?}) names a disabled model", model.path);
                }
            }
        }
        Ok(models)
    }

    /// The project's `generate_schema_name` if it has one, else dbt's:
    /// the target's schema, suffixed by the model's own.
    fn schema_of(&self, path: &str, custom: Option<&str>) -> Result<String> {
        if !self.macros.defines("generate_schema_name") {
            return Ok(match custom {
                None => self.target.schema.clone(),
                Some(custom) => format!("{}_{}", self.target.schema, custom.trim()),
            });
        }
        let argument = match custom {
            None => "none".to_string(),
            Some(custom) => format!("{custom:?}"),
        };
        let call = format!("{{{{ generate_schema_name({argument}, none) }}}}");
        let rendered = self.compiler().render(path, &call, &NodeState::default())?;
        Ok(rendered.sql.trim().to_string())
    }

    fn generic_tests(
        &self,
        yaml_files: &[(&String, Mapping)],
        models: &[Model],
        model_paths: &[String],
    ) -> Result<Vec<DataTest>> {
        let mut tests = Vec::new();
        for (path, doc) in yaml_files {
            let dirs = folders(path, model_paths);
            for entry in list(doc, "models", path)? {
                let name = text(&entry, "name").unwrap_or_default();
                if !models.iter().any(|m| m.name == name) {
                    continue; // disabled
                }
                let tested = NodeId::Model(name.to_string());
                for (column, spec) in declared_tests(&entry, path)? {
                    tests.push(self.generic_test(path, &dirs, &tested, name, column, &spec)?);
                }
            }
            for source in list(doc, "sources", path)? {
                let source_name = text(&source, "name").unwrap_or_default();
                for table in list(&source, "tables", path)? {
                    let table_name = text(&table, "name").unwrap_or_default();
                    let tested = NodeId::Source {
                        source: source_name.to_string(),
                        table: table_name.to_string(),
                    };
                    let label = format!("{source_name}_{table_name}");
                    for (column, spec) in declared_tests(&table, path)? {
                        tests.push(self.generic_test(path, &dirs, &tested, &label, column, &spec)?);
                    }
                }
            }
        }
        Ok(tests.into_iter().flatten().collect())
    }

    /// One entry of a `data_tests:` list; `None` when it is disabled.
    fn generic_test(
        &self,
        path: &str,
        dirs: &[String],
        tested: &NodeId,
        label: &str,
        column: Option<String>,
        spec: &Value,
    ) -> Result<Option<DataTest>> {
        let (test_name, arguments) = match spec {
            Value::String(name) => (name.clone(), Mapping::new()),
            Value::Mapping(map) if map.len() == 1 => {
                let (name, args) = map.iter().next().expect("one entry");
                let name = name
                    .as_str()
                    .ok_or_else(|| anyhow!("{path}: a test name must be text"))?;
                let args = match args {
                    Value::Null => Mapping::new(),
                    Value::Mapping(args) => args.clone(),
                    _ => bail!("{path}: the arguments of {name} must be a mapping"),
                };
                (name.to_string(), args)
            }
            _ => bail!("{path}: a test must be a name or a mapping of one name to arguments"),
        };
        if test_name.contains('.') {
            bail!(
                "{path}: test {test_name}: tests from packages are not supported by the native runner"
            );
        }
        let macro_name = format!("test_{test_name}");
        if !self.macros.defines(&macro_name) {
            bail!(
                "{path}: no generic test named {test_name} (no macro {macro_name} in macro-paths)"
            );
        }
        // dbt's layout: `config:` and legacy config keys beside the
        // arguments, which may also be under `arguments:`.
        let mut config = Mapping::new();
        let mut kwargs: Vec<(String, Value)> = Vec::new();
        if let Some(column) = column {
            kwargs.push(("column_name".into(), Value::String(column)));
        }
        let mut custom_name = None;
        for (key, value) in arguments {
            let key = key.as_str().unwrap_or_default().to_string();
            match key.as_str() {
                "config" => match value {
                    Value::Mapping(map) => config.extend(map),
                    _ => bail!("{path}: {test_name}: `config` must be a mapping"),
                },
                "arguments" => match value {
                    Value::Mapping(map) => kwargs.extend(
                        map.into_iter()
                            .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v)),
                    ),
                    _ => bail!("{path}: {test_name}: `arguments` must be a mapping"),
                },
                "name" => custom_name = value.as_str().map(str::to_string),
                "description" => {}
                key if TEST_CONFIG.contains(&key) => {
                    config.insert(Value::String(key.to_string()), value);
                }
                _ => kwargs.push((key, value)),
            }
        }
        let test_type = match tested {
            NodeId::Source { .. } => format!("source_{test_name}"),
            _ => test_name.clone(),
        };
        let name = custom_name.unwrap_or_else(|| generic_test_name(&test_type, label, &kwargs));
        let mut merged = tree_config(self.test_tree.as_ref(), &self.project_name, dirs);
        merged.extend(
            self.render_strings(path, &Value::Mapping(config))?
                .as_mapping()
                .cloned()
                .unwrap_or_default(),
        );
        if disabled(&merged) {
            return Ok(None);
        }
        let mut depends_on = vec![tested.clone()];
        for (_, value) in &kwargs {
            depends_on.extend(self.compiler().argument(path, value)?.depends_on);
        }
        depends_on.sort();
        depends_on.dedup();
        Ok(Some(DataTest {
            name,
            path: path.to_string(),
            kind: TestKind::Generic {
                macro_name,
                tested: tested.clone(),
                kwargs,
            },
            config: test_config(path, &merged)?,
            depends_on,
        }))
    }

    fn singular_tests(&self, files: &Files, test_paths: &[String]) -> Result<Vec<DataTest>> {
        let mut tests = Vec::new();
        for (path, sql) in files
            .iter()
            .filter(|(path, _)| in_folders(path, test_paths) && path.ends_with(".sql"))
        {
            let rendered = self.compiler().render(path, sql, &NodeState::default())?;
            let mut config = tree_config(
                self.test_tree.as_ref(),
                &self.project_name,
                &folders(path, test_paths),
            );
            config.extend(rendered.config);
            if disabled(&config) {
                continue;
            }
            tests.push(DataTest {
                name: stem(path),
                path: path.clone(),
                kind: TestKind::Singular { sql: sql.clone() },
                config: test_config(path, &config)?,
                depends_on: rendered.depends_on,
            });
        }
        Ok(tests)
    }
}

/// The tests a model or source table declares, with their column.
fn declared_tests(entry: &Mapping, path: &str) -> Result<Vec<(Option<String>, Value)>> {
    let tests_of = |map: &Mapping| -> Vec<Value> {
        ["data_tests", "tests"]
            .iter()
            .filter_map(|key| map.get(*key))
            .filter_map(Value::as_sequence)
            .flatten()
            .cloned()
            .collect()
    };
    let mut found: Vec<(Option<String>, Value)> =
        tests_of(entry).into_iter().map(|t| (None, t)).collect();
    for column in list(entry, "columns", path)? {
        let name = text(&column, "name")
            .ok_or_else(|| anyhow!("{path}: a column has no name"))?
            .to_string();
        found.extend(
            tests_of(&column)
                .into_iter()
                .map(|t| (Some(name.clone()), t)),
        );
    }
    Ok(found)
}

/// The config `dbt_project.yml` gives a node in `dirs` of the project:
/// `+key`s from the project's level down to the node's folder.
fn tree_config(tree: Option<&Value>, project: &str, dirs: &[String]) -> Mapping {
    let mut config = Mapping::new();
    let Some(mut level) = tree.and_then(|t| t.get(project)) else {
        return config;
    };
    let mut take = |level: &Value| {
        if let Some(map) = level.as_mapping() {
            for (key, value) in map {
                if let Some(key) = key.as_str().and_then(|k| k.strip_prefix('+')) {
                    config.insert(Value::String(key.to_string()), value.clone());
                }
            }
        }
    };
    take(level);
    for dir in dirs {
        match level.get(dir.as_str()) {
            Some(next) => {
                take(next);
                level = next;
            }
            None => break,
        }
    }
    config
}

fn model_config(path: &str, config: &Mapping) -> Result<ModelConfig> {
    check_keys(path, config, MODEL_CONFIG)?;
    let get = |key: &str| config.get(key).and_then(Value::as_str);
    let materialized = match get("materialized").unwrap_or("view") {
        "view" => Materialized::View,
        "table" => Materialized::Table,
        "incremental" => Materialized::Incremental,
        other => bail!(
            "{path}: materialized={other} is not supported by the native runner (view, table, incremental)"
        ),
    };
    let strategy = match get("incremental_strategy") {
        None => None,
        Some("merge") => Some(Strategy::Merge),
        Some("delete+insert") => Some(Strategy::DeleteInsert),
        Some("append") => Some(Strategy::Append),
        Some(other) => bail!(
            "{path}: incremental_strategy={other} is not supported by the native runner (merge, delete+insert, append)"
        ),
    };
    if let Some(change) = get("on_schema_change").filter(|c| *c != "ignore") {
        bail!("{path}: on_schema_change={change} is not supported by the native runner (ignore)");
    }
    let unique_key = match config.get("unique_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => bail!("{path}: unique_key must be one column name for the native runner"),
    };
    if materialized == Materialized::Incremental
        && unique_key.is_none()
        && matches!(strategy, Some(Strategy::Merge | Strategy::DeleteInsert))
    {
        bail!("{path}: an incremental merge or delete+insert needs a unique_key");
    }
    let cluster_by = match config.get("cluster_by") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(column)) => vec![column.clone()],
        Some(value) => serde_yaml::from_value(value.clone())
            .with_context(|| format!("{path}: cluster_by must be a column or a list of columns"))?,
    };
    Ok(ModelConfig {
        materialized,
        schema: get("schema").map(str::to_string),
        unique_key,
        strategy,
        cluster_by,
        transient: config
            .get("transient")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    })
}

fn test_config(path: &str, config: &Mapping) -> Result<TestConfig> {
    check_keys(path, config, TEST_CONFIG)?;
    let mut out = TestConfig::default();
    let get = |key: &str| -> Option<String> {
        config.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        })
    };
    if let Some(severity) = get("severity") {
        out.severity = match severity.to_ascii_lowercase().as_str() {
            "error" => Severity::Error,
            "warn" => Severity::Warn,
            _ => bail!("{path}: severity must be warn or error, not {severity:?}"),
        };
    }
    if let Some(v) = get("fail_calc") {
        out.fail_calc = v;
    }
    if let Some(v) = get("warn_if") {
        out.warn_if = v;
    }
    if let Some(v) = get("error_if") {
        out.error_if = v;
    }
    out.where_clause = get("where").filter(|w| !w.trim().is_empty());
    Ok(out)
}

fn check_keys(path: &str, config: &Mapping, known: &[&str]) -> Result<()> {
    for key in config.keys() {
        let key = key.as_str().unwrap_or_default();
        if !known.contains(&key) {
            bail!("{path}: config `{key}` is not supported by the native runner");
        }
    }
    Ok(())
}

/// `enabled: false`, which leaves a node out as if it were not there.
fn disabled(config: &Mapping) -> bool {
    config.get("enabled").and_then(Value::as_bool) == Some(false)
}

fn text<'m>(map: &'m Mapping, key: &str) -> Option<&'m str> {
    map.get(key).and_then(Value::as_str)
}

/// The mappings listed under `key` (none when it is absent).
fn list(map: &Mapping, key: &str, path: &str) -> Result<Vec<Mapping>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                item.as_mapping()
                    .cloned()
                    .ok_or_else(|| anyhow!("{path}: each entry of `{key}` must be a mapping"))
            })
            .collect(),
        Some(_) => bail!("{path}: `{key}` must be a list"),
    }
}

/// Whether `path` is under one of `folders`.
fn in_folders(path: &str, folders: &[String]) -> bool {
    folders.iter().any(|f| {
        path.strip_prefix(f.trim_end_matches('/'))
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The folders between the project folder `root` it is under and the file.
fn folders(path: &str, roots: &[String]) -> Vec<String> {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    parts.pop();
    let depth = roots
        .iter()
        .find(|r| in_folders(path, std::slice::from_ref(*r)))
        .map_or(1, |r| r.trim_end_matches('/').split('/').count());
    parts.drain(..depth.min(parts.len()));
    parts
}

fn stem(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_string()
}
