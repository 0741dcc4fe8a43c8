//! The dbt project under sql/, read and compiled the way dbt-core does for
//! the subset this project uses, so that `transform` builds it without
//! Python: `dbt_project.yml`, the YAML files (models, sources, generic
//! tests), the Jinja SQL of models, macros and singular tests.
//!
//! No I/O: the files come in as text, and the SQL goes out as statements
//! (`materialize`) that `tasks::transform` runs on a warehouse. Anything
//! outside the subset is a configuration error (78) naming the file and
//! the construct, found when the project is loaded.

mod graph;
mod jinja;
pub(crate) mod materialize;
mod naming;
mod yaml;

use std::collections::BTreeMap;

use anyhow::Result;

pub(crate) use graph::{BuildPlan, Selector};
pub(crate) use jinja::{Compiler, Env};

use crate::exit;

/// The project's files, by path relative to the project folder.
pub(crate) type Files = BTreeMap<String, String>;

/// Which warehouse a project is compiled for: dbt's `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    DuckDb,
    Snowflake,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::DuckDb => "duckdb",
            Backend::Snowflake => "snowflake",
        }
    }
}

/// dbt's `target`: the backend and the schema of models without one.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub backend: Backend,
    pub schema: String,
    pub database: String,
}

/// A node of the project graph.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum NodeId {
    Source { source: String, table: String },
    Model(String),
    Test(String),
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeId::Source { source, table } => write!(f, "source {source}.{table}"),
            NodeId::Model(name) => write!(f, "model {name}"),
            NodeId::Test(name) => write!(f, "test {name}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Materialized {
    View,
    Table,
    Incremental,
}

impl Materialized {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Materialized::View => "view",
            Materialized::Table => "table",
            Materialized::Incremental => "incremental",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    Merge,
    DeleteInsert,
    Append,
}

/// A model's configuration: `dbt_project.yml` for its folder, then its
/// own `config()` call.
#[derive(Clone, Debug)]
pub(crate) struct ModelConfig {
    pub materialized: Materialized,
    pub schema: Option<String>,
    pub unique_key: Option<String>,
    pub strategy: Option<Strategy>,
    pub cluster_by: Vec<String>,
    pub transient: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub name: String,
    pub path: String,
    pub sql: String,
    pub config: ModelConfig,
    /// `SCHEMA.name`, as the warehouse names the relation.
    pub relation: String,
    pub depends_on: Vec<NodeId>,
}

#[derive(Clone, Debug)]
pub(crate) struct SourceTable {
    pub source: String,
    pub table: String,
    pub relation: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warn,
}

/// dbt's test config: the status a count of failing rows gives.
#[derive(Clone, Debug)]
pub(crate) struct TestConfig {
    pub severity: Severity,
    pub fail_calc: String,
    pub warn_if: String,
    pub error_if: String,
    pub where_clause: Option<String>,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            severity: Severity::Error,
            fail_calc: "count(*)".into(),
            warn_if: "!= 0".into(),
            error_if: "!= 0".into(),
            where_clause: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum TestKind {
    /// A generic test: the macro `test_<name>` called on a model or source.
    Generic {
        macro_name: String,
        tested: NodeId,
        /// `column_name` and the test's other arguments, as YAML gave them.
        kwargs: Vec<(String, serde_yaml::Value)>,
    },
    /// A query in tests/ whose rows are failures.
    Singular { sql: String },
}

#[derive(Clone, Debug)]
pub(crate) struct DataTest {
    /// dbt's name for the test (`unique_mart_contacts_contact_id`).
    pub name: String,
    pub path: String,
    pub kind: TestKind,
    pub config: TestConfig,
    pub depends_on: Vec<NodeId>,
}

/// The loaded project: every node resolved and compiled once, as `dbt
/// parse` does, so that errors surface before anything runs.
#[derive(Debug)]
pub(crate) struct Project {
    pub target: Target,
    pub models: Vec<Model>,
    pub sources: Vec<SourceTable>,
    pub tests: Vec<DataTest>,
    macros: jinja::Macros,
    vars: BTreeMap<String, serde_yaml::Value>,
    relations: jinja::Relations,
    env: Env,
}

impl Project {
    /// Reads the project from its files for `target`, with the command
    /// line's `vars` (which win over the project's) and `env` for
    /// `env_var()`.
    pub(crate) fn load(
        files: &Files,
        target: Target,
        vars: BTreeMap<String, serde_yaml::Value>,
        env: &Env,
    ) -> Result<Project> {
        yaml::load(files, target, vars, env).map_err(|e| {
            if exit::code_of(&e) == exit::ExitCode::Config {
                e
            } else {
                exit::config(format!("dbt project: {e:#}"))
            }
        })
    }

    pub(crate) fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    pub(crate) fn source(&self, source: &str, table: &str) -> Option<&SourceTable> {
        self.sources
            .iter()
            .find(|s| s.source == source && s.table == table)
    }

    fn compiler(&self) -> Compiler<'_> {
        Compiler {
            target: &self.target,
            vars: &self.vars,
            env: &self.env,
            macros: &self.macros,
            relations: &self.relations,
        }
    }

    /// A model's SQL, for an incremental run or not.
    pub(crate) fn compile_model(&self, model: &Model, is_incremental: bool) -> Result<String> {
        let node = jinja::NodeState {
            this: Some(model.relation.clone()),
            is_incremental,
        };
        self.compiler()
            .render(&model.path, &model.sql, &node)
            .map(|r| r.sql)
            .map_err(|e| exit::config(format!("dbt project: {e:#}")))
    }

    /// A test's query, whose rows are its failures.
    pub(crate) fn compile_test(&self, test: &DataTest) -> Result<String> {
        let compiler = self.compiler();
        let rendered = match &test.kind {
            TestKind::Singular { sql } => {
                compiler.render(&test.path, sql, &jinja::NodeState::default())
            }
            TestKind::Generic {
                macro_name,
                tested,
                kwargs,
            } => {
                let relation = match tested {
                    NodeId::Model(name) => self.model(name).map(|m| m.relation.clone()),
                    NodeId::Source { source, table } => {
                        self.source(source, table).map(|s| s.relation.clone())
                    }
                    NodeId::Test(_) => None,
                }
                .ok_or_else(|| anyhow::anyhow!("{}: {tested} is not in the project", test.path))?;
                let model = materialize::tested_relation(&relation, &test.config);
                let mut arguments = vec![(
                    "model".to_string(),
                    minijinja::Value::from_safe_string(model),
                )];
                for (name, value) in kwargs {
                    let evaluated = compiler.argument(&test.path, value)?;
                    let value = match evaluated.depends_on.is_empty() {
                        true => jinja::value(value),
                        false => minijinja::Value::from_safe_string(evaluated.sql),
                    };
                    arguments.push((name.clone(), value));
                }
                compiler.call_test(&test.path, macro_name, &arguments)
            }
        };
        rendered
            .map(|r| r.sql)
            .map_err(|e| exit::config(format!("dbt project: {}: {e:#}", test.name)))
    }

    /// The schemas the models build into, for `create schema if not exists`.
    pub(crate) fn schemas(&self) -> Vec<String> {
        let mut schemas: Vec<String> = self
            .models
            .iter()
            .filter_map(|m| m.relation.split_once('.').map(|(s, _)| s.to_string()))
            .collect();
        schemas.sort();
        schemas.dedup();
        schemas
    }
}
