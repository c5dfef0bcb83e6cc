//! The crate's one error type. Every variant that comes from a file names the file, so a user can
//! tell which of a folder's files to look at without reading the code.

use std::path::PathBuf;

/// What went wrong while writing or reading a results folder.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file the folder must hold is absent.
    #[error("{path}: missing (is this a csp-loadtest results folder?)")]
    Missing {
        /// The file that should exist.
        path: PathBuf,
    },
    /// A JSON file is malformed or lacks a field the schema requires.
    #[error("{path}: not a valid {what}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Which record it should hold (`summary`, `run record`...).
        what: &'static str,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file is malformed (the error carries the line).
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV reader's or writer's error.
        #[source]
        source: csv::Error,
    },
    /// A file parses but contradicts itself or the rest of the folder.
    #[error("{path}: {msg}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Runs that cannot be combined (e.g. a merge of different regions).
    #[error("cannot combine these runs: {0}")]
    Incompatible(String),
    /// Nothing to work on.
    #[error("no runs given")]
    NoRuns,
}

impl ResultsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ResultsError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        ResultsError::Corrupt {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn csv(path: impl Into<PathBuf>, source: csv::Error) -> Self {
        ResultsError::Csv {
            path: path.into(),
            source,
        }
    }
}
