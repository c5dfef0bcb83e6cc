//! The one error type of the crate. Every variant that comes from a file names the file.

use std::path::PathBuf;

/// What went wrong while writing or reading reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A results file the folder must hold is absent.
    #[error("{path}: missing (is this a csp-loadtest results folder?)")]
    Missing {
        /// The file that should exist.
        path: PathBuf,
    },
    /// A JSON file is malformed or does not have the expected fields.
    #[error("{path}: not a valid summary: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A file exists but its content is wrong (HDR interval log, CSV, ...).
    #[error("{path}: {msg}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// Rendering a graph failed.
    #[error("{path}: drawing failed: {msg}")]
    Plot {
        /// The PNG being drawn.
        path: PathBuf,
        /// The plotting backend's message.
        msg: String,
    },
    /// Runs that cannot be combined (e.g. a merge of different regions).
    #[error("cannot combine these runs: {0}")]
    Incompatible(String),
    /// Nothing to report on.
    #[error("no runs given")]
    NoRuns,
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        ReportError::Corrupt {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn plot(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        ReportError::Plot {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
}
