//! Exit codes: the contract with Airflow (`describe` prints it; the
//! README documents it).
//!
//! Tasks return `anyhow::Error`; an error built here carries its exit code,
//! anything else is a bug (1). `main` maps errors into codes in one place.

use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// Task done; the outcome is in the metrics JSON.
    Success = 0,
    /// Anything else: a bug.
    Bug = 1,
    /// Usage error (bad arguments).
    Usage = 2,
    /// Data rejected: unreadable file, schema mismatch, failure rate over tolerance.
    DataRejected = 65,
    /// Transient infrastructure error after in-process retries; Airflow retries.
    Transient = 75,
    /// Configuration error: missing or invalid setting, bad credentials.
    Config = 78,
    /// Nothing to do / upstream absent, by design; Airflow skips.
    NothingToDo = 99,
}

/// What the Airflow DAG does with a task's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AirflowAction {
    Success,
    /// Fail the try; Airflow retries it.
    Retry,
    /// Fail without retrying: the input or the setup must change first.
    Fail,
    Skip,
}

impl AirflowAction {
    pub fn verb(self) -> &'static str {
        match self {
            AirflowAction::Success => "Airflow: success",
            AirflowAction::Retry => "Airflow retries",
            AirflowAction::Fail => "Airflow fails, no retry",
            AirflowAction::Skip => "Airflow skips",
        }
    }
}

impl ExitCode {
    pub const ALL: [ExitCode; 7] = [
        ExitCode::Success,
        ExitCode::Bug,
        ExitCode::Usage,
        ExitCode::DataRejected,
        ExitCode::Transient,
        ExitCode::Config,
        ExitCode::NothingToDo,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Success => {
                "done; the outcome (including quarantined failures) is in the metrics JSON"
            }
            ExitCode::Bug => "a bug: an unexpected error or a panic",
            ExitCode::Usage => "usage error",
            ExitCode::DataRejected => {
                "data rejected: unreadable file, schema mismatch, failure rate over tolerance, \
                 failed SQL data test"
            }
            ExitCode::Transient => "transient infrastructure error after retries",
            ExitCode::Config => "configuration error: missing or invalid setting",
            ExitCode::NothingToDo => "nothing to do / upstream absent",
        }
    }

    pub fn airflow(self) -> AirflowAction {
        match self {
            ExitCode::Success => AirflowAction::Success,
            // A bug fails the same way on every try: retrying only delays the alert.
            ExitCode::Transient => AirflowAction::Retry,
            ExitCode::Bug | ExitCode::Usage | ExitCode::DataRejected | ExitCode::Config => {
                AirflowAction::Fail
            }
            ExitCode::NothingToDo => AirflowAction::Skip,
        }
    }
}

/// An error whose exit code is known.
#[derive(Debug)]
pub struct TaskError {
    pub code: ExitCode,
    pub message: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

fn task_error(code: ExitCode, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(TaskError {
        code,
        message: message.into(),
    })
}

pub fn rejected(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::DataRejected, message)
}

pub fn transient(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::Transient, message)
}

pub fn config(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::Config, message)
}

pub fn nothing_to_do(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::NothingToDo, message)
}

pub fn bug(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::Bug, message)
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::Usage, message)
}

/// The exit code an error maps to; unknown errors are bugs.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<TaskError>())
        .map_or(ExitCode::Bug, |e| e.code)
}

/// The first line of a message (an SQL statement, a parser's report).
pub fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or_default()
}

/// One line: the error and its causes.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_survive_context() {
        let err = Err::<(), _>(transient("metadata db locked"))
            .context("recording stage")
            .unwrap_err();
        assert_eq!(code_of(&err), ExitCode::Transient);
        assert_eq!(one_line(&err), "recording stage: metadata db locked");
    }

    #[test]
    fn unknown_errors_are_bugs() {
        assert_eq!(code_of(&anyhow::anyhow!("boom")), ExitCode::Bug);
    }
}
