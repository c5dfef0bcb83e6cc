//! The errors of this crate. Each one names the file it is about and, for a thresholds file, the
//! line and key, so that a CI log says exactly what to fix.

use std::path::PathBuf;

/// What went wrong reading thresholds, comparing with a baseline or writing JUnit XML.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    /// The thresholds (or profile) file could not be read.
    #[error("cannot read {what} {}", path.display())]
    Read {
        /// What the file was read as: `thresholds file`, or `profile` for a profile's own table.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: malformed TOML{}: {message}", path.display(), key_part(key))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The key written on that line, if the line has one.
        key: Option<String>,
        /// The TOML parser's message.
        message: String,
    },
    /// A key of the thresholds table is unknown or its value is wrong.
    #[error("{}:{line}: threshold `{key}`: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// 1-based line where the key is written.
        line: usize,
        /// The full dotted key, e.g. `poa.time_to_95`.
        key: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The baseline run is not the same scenario as the run checked against it.
    #[error("baseline {baseline} cannot be compared with {current}: {why}")]
    IncompatibleBaseline {
        /// The baseline run, as `profile (region, N premises)`.
        baseline: String,
        /// The run checked.
        current: String,
        /// What differs.
        why: String,
    },
    /// The JUnit XML could not be produced or written.
    #[error("cannot write JUnit XML {}: {message}", path.display())]
    Junit {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn key_part(key: &Option<String>) -> String {
    match key {
        Some(k) => format!(" at key `{k}`"),
        None => String::new(),
    }
}
