//! `describe`: the interface as JSON, built from the types that define it
//! (tasks, statuses, exit codes, the catalogue). The Airflow package reads
//! a committed copy, airflow/dags/marketing_pipeline_tasks/interface.json;
//! a test fails when the copy and the binary disagree.

use serde::Serialize;

use crate::catalog::Catalogue;
use crate::exit::{AirflowAction, ExitCode};
use crate::metrics::{Status, Task};

#[derive(Serialize)]
pub(crate) struct Interface {
    binary: &'static str,
    version: &'static str,
    tasks: Vec<TaskEntry>,
    /// What a task that did not finish reports, whatever the task.
    failure_statuses: Vec<Status>,
    exit_codes: Vec<ExitCodeEntry>,
    datasets: Vec<DatasetEntry>,
}

#[derive(Serialize)]
struct TaskEntry {
    name: Task,
    per_dataset: bool,
    statuses: &'static [Status],
}

#[derive(Serialize)]
struct ExitCodeEntry {
    code: i32,
    name: ExitCode,
    airflow: AirflowAction,
    meaning: &'static str,
}

#[derive(Serialize)]
struct DatasetEntry {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    key: &'static str,
    references: Vec<&'static str>,
}

pub(crate) fn interface(catalogue: &Catalogue) -> Interface {
    Interface {
        binary: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        tasks: Task::ALL
            .iter()
            .map(|&task| TaskEntry {
                name: task,
                per_dataset: task.per_dataset(),
                statuses: task.statuses(),
            })
            .collect(),
        failure_statuses: Status::FAILURES.to_vec(),
        exit_codes: ExitCode::ALL
            .iter()
            .map(|&code| ExitCodeEntry {
                code: code.code(),
                name: code,
                airflow: code.airflow(),
                meaning: code.meaning(),
            })
            .collect(),
        datasets: catalogue
            .datasets()
            .iter()
            .map(|&dataset| DatasetEntry {
                name: dataset.name(),
                kind: if dataset.is_fact() {
                    "fact"
                } else {
                    "dimension"
                },
                format: dataset.format().extension(),
                key: dataset.key(),
                references: dataset.references().iter().map(|d| d.name()).collect(),
            })
            .collect(),
    }
}

/// The interface, pretty-printed as the committed copy is.
pub(crate) fn to_json(catalogue: &Catalogue) -> String {
    serde_json::to_string_pretty(&interface(catalogue)).expect("the interface serialises") + "\n"
}
