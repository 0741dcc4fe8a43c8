//! The statements that build a model, as dbt-duckdb and dbt-snowflake
//! issue them (their materialization macros, 1.11), and the queries that
//! measure what an incremental run changes and what a test finds.

use super::{Backend, Model, ModelConfig, Strategy, TestConfig};

/// Creates or replaces a view.
pub(crate) fn view(relation: &str, sql: &str) -> Vec<String> {
    vec![format!("create or replace view {relation} as (\n{sql}\n)")]
}

/// Creates or replaces a table; on Snowflake ordered by and clustered on
/// `cluster_by`, and transient unless configured otherwise, as dbt does
/// (DuckDB has no clustering keys, and dbt-duckdb ignores them).
pub(crate) fn table(
    backend: Backend,
    relation: &str,
    sql: &str,
    config: &ModelConfig,
) -> Vec<String> {
    match backend {
        Backend::DuckDb => vec![format!("create or replace table {relation} as (\n{sql}\n)")],
        Backend::Snowflake => {
            let transient = if config.transient { "transient " } else { "" };
            if config.cluster_by.is_empty() {
                return vec![format!(
                    "create or replace {transient}table {relation} as (\n{sql}\n)"
                )];
            }
            let keys = config.cluster_by.join(", ");
            vec![
                format!(
                    "create or replace {transient}table {relation} as (\nselect * from (\n{sql}\n) order by ({keys})\n)"
                ),
                format!("alter table {relation} cluster by ({keys})"),
            ]
        }
    }
}

/// The strategy a model's incremental runs use: its own, or the
/// adapter's default (delete+insert on DuckDB, merge on Snowflake).
pub(crate) fn strategy(backend: Backend, config: &ModelConfig) -> Strategy {
    config.strategy.unwrap_or(match backend {
        Backend::DuckDb => Strategy::DeleteInsert,
        Backend::Snowflake => Strategy::Merge,
    })
}

/// The temporary relation an incremental run stages the new rows in, and
/// the statement that creates it: a temp table on DuckDB (connection
/// local), a temp view (merge) or table on Snowflake (session local).
pub(crate) fn staged(backend: Backend, model: &Model, sql: &str) -> (String, String) {
    match backend {
        Backend::DuckDb => {
            let temp = format!("{}__dbt_tmp", model.name);
            let create = format!("create or replace temporary table {temp} as (\n{sql}\n)");
            (temp, create)
        }
        Backend::Snowflake => {
            let temp = format!("{}__dbt_tmp", model.relation);
            let kind = match strategy(backend, &model.config) {
                Strategy::DeleteInsert => "table",
                Strategy::Merge | Strategy::Append => "view",
            };
            let create = format!("create or replace temporary {kind} {temp} as (\n{sql}\n)");
            (temp, create)
        }
    }
}

/// Drops the staged relation of `staged`.
pub(crate) fn drop_staged(backend: Backend, model: &Model, temp: &str) -> String {
    let kind = match (backend, strategy(backend, &model.config)) {
        (Backend::Snowflake, Strategy::Merge | Strategy::Append) => "view",
        _ => "table",
    };
    format!("drop {kind} if exists {temp}")
}

/// The statements that apply the staged rows to the target; more than
/// one run in a transaction.
pub(crate) fn apply(
    backend: Backend,
    model: &Model,
    temp: &str,
    columns: &[String],
) -> Vec<String> {
    let target = &model.relation;
    let quoted: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    let column_list = quoted.join(", ");
    let insert =
        format!("insert into {target} ({column_list})\n(select {column_list} from {temp})");
    let key = model.config.unique_key.as_deref();
    match (strategy(backend, &model.config), key) {
        (Strategy::Append, _) | (_, None) => vec![insert],
        (Strategy::DeleteInsert, Some(key)) => vec![
            match backend {
                Backend::DuckDb => {
                    format!("delete from {target}\nwhere ({key}) in (select ({key}) from {temp})")
                }
                Backend::Snowflake => format!(
                    "delete from {target} as DBT_INTERNAL_DEST\nwhere ({key}) in (\n    select distinct {key}\n    from {temp} as DBT_INTERNAL_SOURCE\n)"
                ),
            },
            insert,
        ],
        (Strategy::Merge, Some(key)) => vec![match backend {
            Backend::DuckDb => format!(
                "MERGE INTO {target} AS DBT_INTERNAL_DEST\n\
                 USING {temp} AS DBT_INTERNAL_SOURCE\n\
                 ON (DBT_INTERNAL_SOURCE.{key} = DBT_INTERNAL_DEST.{key})\n\
                 WHEN MATCHED THEN UPDATE BY NAME\n\
                 WHEN NOT MATCHED THEN INSERT BY NAME"
            ),
            Backend::Snowflake => {
                let updates: Vec<String> = quoted
                    .iter()
                    .map(|c| format!("{c} = DBT_INTERNAL_SOURCE.{c}"))
                    .collect();
                // dbt leaves the values unqualified; qualified they mean the
                // same to Snowflake, and its emulator needs them so.
                let values: Vec<String> = quoted
                    .iter()
                    .map(|c| format!("DBT_INTERNAL_SOURCE.{c}"))
                    .collect();
                format!(
                    "merge into {target} as DBT_INTERNAL_DEST\n\
                     using {temp} as DBT_INTERNAL_SOURCE\n\
                     on ((DBT_INTERNAL_SOURCE.{key} = DBT_INTERNAL_DEST.{key}))\n\
                     when matched then update set\n{}\n\
                     when not matched then insert\n({column_list})\nvalues\n({})",
                    updates.join(",\n"),
                    values.join(", ")
                )
            }
        }],
    }
}

/// One row: the staged rows whose key the target lacks (inserts), and
/// the staged rows not already in the target exactly (inserts and real
/// updates), so that re-running a ds reports no change although dbt's
/// MERGE rewrites every matched row.
pub(crate) fn change_counts(model: &Model, temp: &str, columns: &[String]) -> String {
    let target = &model.relation;
    let column_list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let new_keys = match model.config.unique_key.as_deref() {
        Some(key) => format!(
            "(select count(*) from {temp} as s where not exists \
             (select 1 from {target} as t where t.{key} = s.{key}))"
        ),
        None => format!("(select count(*) from {temp})"),
    };
    format!(
        "select {new_keys}, (select count(*) from (\
         select {column_list} from {temp} except select {column_list} from {target}) as changed)"
    )
}

/// The columns of a relation, in order; none when it does not exist.
pub(crate) fn columns_query(relation: &str) -> String {
    let (schema, name) = relation.split_once('.').unwrap_or(("", relation));
    format!(
        "select column_name from information_schema.columns \
         where upper(table_schema) = upper('{schema}') and upper(table_name) = upper('{name}') \
         order by ordinal_position"
    )
}

/// `BASE TABLE` or `VIEW` for a relation; no row when it does not exist.
pub(crate) fn kind_query(relation: &str) -> String {
    let (schema, name) = relation.split_once('.').unwrap_or(("", relation));
    format!(
        "select table_type from information_schema.tables \
         where upper(table_schema) = upper('{schema}') and upper(table_name) = upper('{name}')"
    )
}

/// dbt's test wrapper: the failure count and whether it warns or errors.
pub(crate) fn test_query(sql: &str, config: &TestConfig) -> String {
    let calc = &config.fail_calc;
    format!(
        "select {calc} as failures, {calc} {} as should_warn, {calc} {} as should_error \
         from (\n{sql}\n) dbt_internal_test",
        config.warn_if, config.error_if
    )
}

/// A generic test's `model`: the relation, filtered by the `where` config.
pub(crate) fn tested_relation(relation: &str, config: &TestConfig) -> String {
    match &config.where_clause {
        Some(condition) => format!("(select * from {relation} where {condition}) dbt_subquery"),
        None => relation.to_string(),
    }
}

fn quote(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::Materialized;

    fn mart(strategy: Option<Strategy>) -> Model {
        Model {
            name: "mart_a".into(),
            path: "models/marts/mart_a.sql".into(),
            sql: String::new(),
            config: ModelConfig {
                materialized: Materialized::Incremental,
                schema: Some("MART".into()),
                unique_key: Some("id".into()),
                strategy,
                cluster_by: vec!["day".into()],
                transient: true,
            },
            relation: "MART.mart_a".into(),
            depends_on: Vec::new(),
        }
    }

    #[test]
    fn strategies_issue_what_the_adapters_issue() {
        let columns = ["id".to_string(), "day".to_string()];
        let merge = apply(
            Backend::DuckDb,
            &mart(Some(Strategy::Merge)),
            "mart_a__dbt_tmp",
            &columns,
        );
        assert_eq!(merge.len(), 1);
        assert!(merge[0].contains("UPDATE BY NAME") && merge[0].contains("INSERT BY NAME"));
        let default = apply(Backend::DuckDb, &mart(None), "t", &columns);
        assert!(
            default[0].starts_with("delete from MART.mart_a\nwhere (id) in"),
            "{default:?}"
        );
        assert_eq!(
            default[1],
            "insert into MART.mart_a (\"id\", \"day\")\n(select \"id\", \"day\" from t)"
        );
        let snowflake = apply(
            Backend::Snowflake,
            &mart(None),
            "MART.mart_a__dbt_tmp",
            &columns,
        );
        assert!(
            snowflake[0]
                .contains("when matched then update set\n\"id\" = DBT_INTERNAL_SOURCE.\"id\"")
        );
    }

    #[test]
    fn snowflake_tables_are_ordered_and_clustered() {
        let statements = table(
            Backend::Snowflake,
            "MART.mart_a",
            "select 1",
            &mart(None).config,
        );
        assert!(statements[0].starts_with("create or replace transient table MART.mart_a"));
        assert!(statements[0].contains("order by (day)"));
        assert_eq!(statements[1], "alter table MART.mart_a cluster by (day)");
        let duckdb = table(
            Backend::DuckDb,
            "MART.mart_a",
            "select 1",
            &mart(None).config,
        );
        assert_eq!(
            duckdb,
            ["create or replace table MART.mart_a as (\nselect 1\n)"]
        );
    }
}
