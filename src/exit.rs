//! Exit codes: the contract with Airflow (documented in the README).
//!
//! Tasks return `anyhow::Error`; an error built here carries its exit code,
//! anything else is a bug (1). `main` maps errors into codes in one place.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
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

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    task_error(ExitCode::Usage, message)
}

/// The exit code an error maps to; unknown errors are bugs.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<TaskError>())
        .map_or(ExitCode::Bug, |e| e.code)
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
