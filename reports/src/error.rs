//! The crate's one error type: the results folder's own errors, plus drawing. Every variant that
//! comes from a file names the file.

use std::path::PathBuf;

/// What went wrong while writing or reading reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing the results' data files failed.
    #[error(transparent)]
    Results(#[from] results::ResultsError),
    /// A report file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Rendering a graph failed.
    #[error("{path}: drawing failed: {msg}")]
    Plot {
        /// The graph being drawn.
        path: PathBuf,
        /// The plotting backend's message.
        msg: String,
    },
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

    pub(crate) fn plot(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        ReportError::Plot {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
}
