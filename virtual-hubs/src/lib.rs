//! Virtual Communications Hubs and the shaped transport they send through.
//!
//! CONTRACT SKELETON — the public API the harness relies on. Bodies are filled in by the model work.

pub mod clock;
pub mod sink;

pub use clock::ScenarioClock;
pub use sink::{InstantAckSink, Outbound, Sink};

use ledger::{Ledger, Region};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A resolved load profile.
#[derive(Debug, Clone)]
pub struct Profile {}

/// A profile that could not be read, with file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

impl Profile {
    /// Reads and resolves a profile file (includes, change overlays), validating every field.
    pub fn load(_path: &Path) -> Result<Profile, ProfileError> {
        todo!()
    }
    /// Profile name (e.g. `north/current`).
    pub fn name(&self) -> &str {
        todo!()
    }
    /// CSP region.
    pub fn region(&self) -> Region {
        todo!()
    }
    /// Number of premises (hubs) in the population.
    pub fn premises(&self) -> u32 {
        todo!()
    }
    /// Enabled technical changes.
    pub fn changes(&self) -> Vec<String> {
        todo!()
    }
    /// The resolved profile as TOML.
    pub fn to_resolved_toml(&self) -> String {
        todo!()
    }
    /// Scenario time by which the run ends, ms.
    pub fn horizon_ms(&self) -> u64 {
        todo!()
    }
}

/// What `drive` needs.
#[derive(Debug, Clone)]
pub struct DriveConfig {
    /// The profile.
    pub profile: Arc<Profile>,
    /// Seed for every random choice.
    pub seed: u64,
    /// Scenario clock.
    pub clock: ScenarioClock,
}

/// What `drive` reports about itself.
#[derive(Debug, Clone, Default)]
pub struct DriveReport {
    /// Scenario time when the last hub task finished, ms.
    pub end_ms: u64,
    /// Hubs that ran.
    pub hubs: u32,
    /// Largest lateness of a hub task behind its intended scenario time, scenario ms.
    pub max_lag_ms: u64,
}

/// Runs the scenario: records expected alerts in the ledger, spawns one task per hub, runs the
/// shaped transport, hands surviving alerts to `sink` at their intended times, records model losses.
pub async fn drive(
    _cfg: DriveConfig,
    _sink: Arc<dyn Sink>,
    _ledger: Arc<Mutex<Ledger>>,
) -> DriveReport {
    todo!()
}
