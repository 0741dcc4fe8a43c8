//! The Jinja of a dbt project through minijinja: dbt's context functions
//! (`ref`, `source`, `var`, `env_var`, `config`, `is_incremental`, `this`,
//! `target`) and the project's macros, callable from every model and test
//! without an import, as in dbt. Names outside that context are errors
//! (strict undefined), so an unsupported construct never renders as
//! nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::{Result, anyhow};
use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use regex::Regex;

use super::{NodeId, Target};

/// The environment `env_var()` reads, captured once with the settings.
pub(crate) type Env = BTreeMap<String, String>;

/// The name the combined macros are imported from.
const MACROS: &str = "__macros__";

/// dbt's own generic tests, as dbt-core defines them; a project's macro
/// of the same name replaces one (root-project macros win in dbt too).
const BUILTIN_TESTS: (&str, &str) = ("(dbt) builtin_tests.sql", include_str!("builtin_tests.sql"));

/// Every macro of the project, in one template so that they call each
/// other freely; `{% test x(...) %}` blocks become macros `test_x`, as
/// dbt's own test tag does.
#[derive(Debug, Default)]
pub(crate) struct Macros {
    text: String,
    names: Vec<String>,
    /// Each file and the line of the combined text it starts on.
    starts: Vec<(String, usize)>,
}

impl Macros {
    pub(crate) fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Macros {
        let test_open = Regex::new(r"\{%(-?)\s*test\s+(\w+)\s*\(").expect("valid regex");
        let test_close = Regex::new(r"\{%(-?)\s*endtest\s*(-?)%\}").expect("valid regex");
        let name = Regex::new(r"\{%-?\s*macro\s+(\w+)\s*\(").expect("valid regex");
        let mut macros = Macros::default();
        for (path, text) in std::iter::once(BUILTIN_TESTS).chain(files) {
            let text = test_open.replace_all(text, "{%${1} macro test_${2}(");
            let text = test_close.replace_all(&text, "{%${1} endmacro ${2}%}");
            macros
                .starts
                .push((path.to_string(), macros.text.lines().count() + 1));
            macros.text.push_str(&text);
            if !text.ends_with('\n') {
                macros.text.push('\n');
            }
            for found in name.captures_iter(&text) {
                let found = found[1].to_string();
                if !macros.names.contains(&found) {
                    macros.names.push(found);
                }
            }
        }
        macros
    }

    pub(crate) fn defines(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The file and line a line of the combined text came from.
    fn origin(&self, line: usize) -> (String, usize) {
        let (path, start) = self
            .starts
            .iter()
            .rev()
            .find(|(_, start)| *start <= line)
            .cloned()
            .unwrap_or_default();
        (path, line + 1 - start)
    }

    /// Text that makes every macro callable by name in a template: on the
    /// template's first line, so that its line numbers stay true.
    fn import(&self) -> String {
        match self.names.is_empty() {
            true => String::new(),
            false => format!("{{% from {MACROS:?} import {} %}}", self.names.join(", ")),
        }
    }
}

/// Where `ref()` and `source()` point: relations once the project is
/// loaded; while it is being parsed, the names themselves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Relations {
    pub models: BTreeMap<String, String>,
    pub sources: BTreeMap<(String, String), String>,
}

/// What rendering one node gave: its SQL, its `config()` and the nodes
/// its `ref()`s and `source()`s name.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub sql: String,
    pub config: serde_yaml::Mapping,
    pub depends_on: Vec<NodeId>,
}

/// Renders the project's templates for one target.
pub(crate) struct Compiler<'p> {
    pub target: &'p Target,
    pub vars: &'p BTreeMap<String, serde_yaml::Value>,
    pub env: &'p Env,
    pub macros: &'p Macros,
    pub relations: &'p Relations,
}

/// The node being rendered: dbt's `this` and `is_incremental()`.
#[derive(Clone, Debug, Default)]
pub(crate) struct NodeState {
    pub this: Option<String>,
    pub is_incremental: bool,
}

impl Compiler<'_> {
    /// Renders `text`, a model or singular test at `path`.
    pub(crate) fn render(&self, path: &str, text: &str, node: &NodeState) -> Result<Rendered> {
        self.render_with(path, &format!("{}{text}", self.macros.import()), node, &[])
    }

    /// Calls the generic test macro `macro_name` with `kwargs` (values
    /// already rendered, `model` among them).
    pub(crate) fn call_test(
        &self,
        path: &str,
        macro_name: &str,
        kwargs: &[(String, Value)],
    ) -> Result<Rendered> {
        let arguments: Vec<String> = kwargs
            .iter()
            .map(|(name, _)| format!("{name}=__argument_{name}"))
            .collect();
        let call = format!(
            "{}{{{{ {macro_name}({}) }}}}",
            self.macros.import(),
            arguments.join(", ")
        );
        let globals: Vec<(String, Value)> = kwargs
            .iter()
            .map(|(name, value)| (format!("__argument_{name}"), value.clone()))
            .collect();
        self.render_with(path, &call, &NodeState::default(), &globals)
    }

    /// Evaluates a test argument such as `ref('mart_forms')` to the
    /// relation it names; other strings stay as they are.
    pub(crate) fn argument(&self, path: &str, value: &serde_yaml::Value) -> Result<Rendered> {
        static REFERENCE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"^\s*(ref|source)\s*\(.*\)\s*$").expect("valid regex"));
        match value.as_str() {
            Some(text) if REFERENCE.is_match(text) => self.render_with(
                path,
                &format!("{{{{ {text} }}}}"),
                &NodeState::default(),
                &[],
            ),
            _ => Ok(Rendered::default()),
        }
    }

    fn render_with(
        &self,
        path: &str,
        text: &str,
        node: &NodeState,
        globals: &[(String, Value)],
    ) -> Result<Rendered> {
        let captured = Arc::new(Mutex::new(Rendered::default()));
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        self.add_context(&mut env, node, &captured);
        for (name, value) in globals {
            env.add_global(name.clone(), value.clone());
        }
        let located = |e: Error| self.explain(path, e);
        env.add_template_owned(MACROS.to_string(), self.macros.text.clone())
            .map_err(located)?;
        env.add_template_owned(path.to_string(), text.to_string())
            .map_err(located)?;
        let sql = env
            .get_template(path)
            .and_then(|t| t.render(()))
            .map_err(located)?;
        drop(env);
        let mut rendered = Arc::try_unwrap(captured)
            .map_err(|_| anyhow!("{path}: rendering still in use"))?
            .into_inner()
            .map_err(|_| anyhow!("{path}: rendering panicked"))?;
        rendered.sql = sql;
        rendered.depends_on.sort();
        rendered.depends_on.dedup();
        Ok(rendered)
    }

    fn add_context(
        &self,
        env: &mut Environment<'_>,
        node: &NodeState,
        captured: &Arc<Mutex<Rendered>>,
    ) {
        let target: BTreeMap<&str, &str> = [
            ("name", self.target.backend.name()),
            ("type", self.target.backend.name()),
            ("schema", self.target.schema.as_str()),
            ("database", self.target.database.as_str()),
        ]
        .into_iter()
        .collect();
        env.add_global("target", Value::from(Serde(&target)));
        if let Some(this) = &node.this {
            env.add_global("this", Value::from_safe_string(this.clone()));
        }
        let incremental = node.is_incremental;
        env.add_function("is_incremental", move || incremental);

        let models = self.relations.models.clone();
        let seen = captured.clone();
        env.add_function("ref", move |name: String| -> Result<Value, Error> {
            let relation = models.get(&name).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("ref({name:?}) names no model of the project"),
                )
            })?;
            lock(&seen).depends_on.push(NodeId::Model(name));
            Ok(Value::from_safe_string(relation.clone()))
        });

        let sources = self.relations.sources.clone();
        let seen = captured.clone();
        env.add_function(
            "source",
            move |source: String, table: String| -> Result<Value, Error> {
                let key = (source.clone(), table.clone());
                let relation = sources.get(&key).ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "source({source:?}, {table:?}) names no source table of the project"
                        ),
                    )
                })?;
                lock(&seen)
                    .depends_on
                    .push(NodeId::Source { source, table });
                Ok(Value::from_safe_string(relation.clone()))
            },
        );

        let vars = self.vars.clone();
        env.add_function(
            "var",
            move |name: String, default: Option<Value>| -> Result<Value, Error> {
                match (vars.get(&name), default) {
                    (Some(value), _) => Ok(Value::from(Serde(value))),
                    (None, Some(default)) => Ok(default),
                    (None, None) => Err(Error::new(
                        ErrorKind::UndefinedError,
                        format!(
                            "required var {name:?} not set (pass it with --vars, or --ds for ds)"
                        ),
                    )),
                }
            },
        );

        let environment = self.env.clone();
        env.add_function(
            "env_var",
            move |name: String, default: Option<String>| -> Result<String, Error> {
                environment.get(&name).cloned().or(default).ok_or_else(|| {
                    Error::new(
                        ErrorKind::UndefinedError,
                        format!("env var {name:?} is not set and has no default"),
                    )
                })
            },
        );

        let seen = captured.clone();
        env.add_function("config", move |kwargs: Kwargs| -> Result<String, Error> {
            let mut rendered = lock(&seen);
            for key in kwargs.args() {
                let value: Value = kwargs.get(key)?;
                let value = serde_yaml::to_value(&value).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("config({key}=...): {e}"),
                    )
                })?;
                rendered.config.insert(serde_yaml::Value::from(key), value);
            }
            Ok(String::new())
        });
    }

    /// A minijinja error as one line naming the file and line it is in
    /// (the macro file's own, not the combined text's).
    fn explain(&self, path: &str, err: Error) -> anyhow::Error {
        let at = match (err.name(), err.line()) {
            (Some(MACROS), Some(line)) => {
                let (file, line) = self.macros.origin(line);
                format!("{file}:{line}")
            }
            (_, Some(line)) => format!("{path}:{line}"),
            _ => path.to_string(),
        };
        let detail = err
            .detail()
            .map_or(err.kind().to_string(), |d| format!("{}: {d}", err.kind()));
        let hint = match err.kind() {
            ErrorKind::UndefinedError
            | ErrorKind::UnknownFunction
            | ErrorKind::UnknownMethod
            | ErrorKind::SyntaxError => {
                " (the native runner supports ref, source, var, env_var, config, \
                 is_incremental, this, target and the project's macros)"
            }
            _ => "",
        };
        anyhow!("{at}: {detail}{hint}")
    }
}

fn lock(captured: &Arc<Mutex<Rendered>>) -> std::sync::MutexGuard<'_, Rendered> {
    captured
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A YAML value as a Jinja value.
pub(crate) fn value(yaml: &serde_yaml::Value) -> Value {
    Value::from(Serde(yaml))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::Backend;

    fn compile(text: &str, macros: &Macros) -> Result<Rendered> {
        let target = Target {
            backend: Backend::DuckDb,
            schema: "main".into(),
            database: "warehouse".into(),
        };
        let vars = [("ds".to_string(), serde_yaml::Value::from("2025-05-25"))]
            .into_iter()
            .collect();
        let mut relations = Relations::default();
        relations.models.insert("stg_a".into(), "STG.stg_a".into());
        let compiler = Compiler {
            target: &target,
            vars: &vars,
            env: &Env::new(),
            macros,
            relations: &relations,
        };
        let node = NodeState {
            this: Some("MART.a".into()),
            is_incremental: true,
        };
        compiler.render("models/a.sql", text, &node)
    }

    #[test]
    fn dbt_context_renders_and_records_dependencies_and_config() {
        let macros = Macros::new([(
            "macros/m.sql",
            "{% macro day() %}cast('{{ var(\"ds\") }}' as date){% endmacro %}",
        )]);
        let out = compile(
            "{{ config(unique_key='id', cluster_by=['d']) }}select * from {{ ref('stg_a') }}\
             {% if is_incremental() %} where d > (select max(d) from {{ this }}) and d = {{ day() }}{% endif %}",
            &macros,
        )
        .unwrap();
        assert_eq!(
            out.sql,
            "select * from STG.stg_a where d > (select max(d) from MART.a) and d = cast('2025-05-25' as date)"
        );
        assert_eq!(out.depends_on, [NodeId::Model("stg_a".into())]);
        assert_eq!(out.config["unique_key"], serde_yaml::Value::from("id"));
        assert_eq!(out.config["cluster_by"][0], serde_yaml::Value::from("d"));
    }

    #[test]
    fn test_blocks_become_macros_and_override_builtins() {
        let macros = Macros::new([(
            "macros/t.sql",
            "{% test unique(model, column_name) %}mine {{ model }}{% endtest %}",
        )]);
        assert!(macros.defines("test_unique") && macros.defines("test_not_null"));
        let target = Target {
            backend: Backend::DuckDb,
            schema: "main".into(),
            database: "w".into(),
        };
        let compiler = Compiler {
            target: &target,
            vars: &BTreeMap::new(),
            env: &Env::new(),
            macros: &macros,
            relations: &Relations::default(),
        };
        let out = compiler
            .call_test(
                "models/schema.yml",
                "test_unique",
                &[
                    ("model".into(), Value::from("MART.a")),
                    ("column_name".into(), Value::from("id")),
                ],
            )
            .unwrap();
        assert_eq!(out.sql.trim(), "mine MART.a");
    }

    #[test]
    fn unsupported_constructs_name_the_file_and_line() {
        let macros = Macros::new([(
            "macros/m.sql",
            "\n{% macro bad() %}{{ adapter.dispatch('x')() }}{% endmacro %}",
        )]);
        let err = compile("select 1\nfrom {{ bad() }}", &macros)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("macros/m.sql:2: "), "{err}");
        assert!(
            err.contains("dispatch") && err.contains("native runner supports"),
            "{err}"
        );
        let err = compile("select 1\n{{ ref('nope') }}", &Macros::new([]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("models/a.sql:2:"), "{err}");
        assert!(err.contains("names no model"), "{err}");
        let err = compile(
            "{% materialization x %}{% endmaterialization %}",
            &Macros::new([]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("syntax error") && err.contains("native runner supports"),
            "{err}"
        );
    }
}
