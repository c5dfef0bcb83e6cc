//! `run.json`: where a result comes from — when it ran, which harness build, which command line,
//! which resolved profile (by hash), on which machine and at what cost to it.
//!
//! It is kept out of `summary.json` on purpose: everything here changes from one invocation to the
//! next, while the summary of a `simulate` run is a function of profile and seed only, so the same
//! seed gives a byte-identical `summary.json`.

use crate::record::HostRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The format version written into `run.json`.
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// The harness build that produced a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessBuild {
    /// `csp-harness` version (Cargo package version).
    pub version: String,
    /// Git commit it was built from; `None` when built outside a git checkout.
    pub commit: Option<String>,
}

impl HarnessBuild {
    /// `0.1.0 (1a2b3c4d5e6f)`, or the version alone without a commit.
    pub fn describe(&self) -> String {
        match &self.commit {
            Some(c) => format!("{} ({})", self.version, c.get(..12).unwrap_or(c)),
            None => self.version.clone(),
        }
    }
}

/// One technical change enabled in the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Its number in `profiles/changes.toml` (`"1"` .. `"8"`).
    pub id: String,
    /// Its title there, e.g. `New North alert channels`.
    pub title: String,
}

/// The resolved profile a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Profile name, e.g. `north/option-a`.
    pub name: String,
    /// The file given on the command line.
    pub path: Option<String>,
    /// SHA-256 (hex) of the resolved profile: the output of `csp-harness profile show FILE`
    /// (with the same `--changes`) without its first line, which only says where it was read from.
    pub sha256: String,
    /// The technical changes enabled, with their titles.
    pub changes: Vec<ChangeRecord>,
}

impl ProfileRecord {
    /// The first 8 hex digits of the hash, as graphs and tables show it.
    pub fn short_hash(&self) -> &str {
        self.sha256.get(..8).unwrap_or(&self.sha256)
    }
}

/// What running cost the machine: the harness process's CPU and memory, sampled once a second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Samples taken.
    pub samples: u64,
    /// Largest CPU% of the harness process (of one core: 200% is two cores busy).
    pub cpu_pct_max: Option<f64>,
    /// Mean CPU% of the harness process.
    pub cpu_pct_mean: Option<f64>,
    /// Largest resident memory, bytes.
    pub rss_max_bytes: Option<u64>,
    /// Mean resident memory, bytes.
    pub rss_mean_bytes: Option<u64>,
    /// Logical CPUs, to read CPU% against the machine.
    pub logical_cpus: usize,
}

/// Everything `run.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format version ([`RUN_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// When the run started (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// When it ended and its results were written (RFC 3339, UTC).
    pub ended_at: DateTime<Utc>,
    /// Wall-clock duration of the run, seconds.
    pub wall_s: f64,
    /// The harness build.
    pub harness: HarnessBuild,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// The resolved profile.
    pub profile: ProfileRecord,
    /// Was the endpoint's certificate left unverified (`--insecure-skip-verify`)? Such a result
    /// says nothing about a secure deployment, and every report of it says so.
    pub insecure: bool,
    /// The machine.
    pub host: HostRecord,
    /// What the run cost it.
    pub resources: Resources,
    /// The random id (32 hex digits) that scoped this run's alert ids at the endpoint (`run`
    /// only): two runs against one long-lived endpoint never share an id. It lives here, not in
    /// summary.json, because it differs on every run. After a merge: the shards' id when they
    /// shared one, else absent (each shard's is under `shards`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Results merged from shards (`csp-harness merge`): the merge's own command line. The fields
    /// above then describe the whole: the earliest start, the latest end, and shard 0's command
    /// line, profile, build, machine and resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_by: Option<Vec<String>>,
    /// Results merged from shards: each shard's own record, in shard order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<RunRecord>,
}
