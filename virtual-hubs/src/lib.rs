//! Virtual Communications Hubs and the shaped transport they send through.
//!
//! - [`profile`]: load profiles (layered TOML, technical-change overlays, validation).
//! - [`scenario`]: which premises lose power, when, for how long; the alerts they must produce.
//! - [`hub`]: the sans-IO hub state machine (North holdover and radio access; C&S reboot, dither,
//!   attach).
//! - [`channel`], [`stage`], [`network`]: the sans-IO transport (slotted contention, queues, token
//!   buckets) and the network task driving it.
//! - [`drive`](mod@drive): the tokio driver ([`drive()`], [`simulate`], [`Progress`]).
//!
//! Loss and delay come only from the modelled mechanisms and the parameters in the profile.

pub mod channel;
pub mod clock;
pub mod drive;
pub mod hub;
pub mod network;
pub mod profile;
pub mod scenario;
pub mod sink;
pub mod stage;
pub mod units;

pub use clock::ScenarioClock;
pub use drive::{DriveConfig, DriveReport, Progress, device_id, drive, simulate};
pub use profile::{Profile, ProfileError};
pub use sink::{InstantAckSink, Outbound, Sink};
