//! The real-time driver of the network model: virtual hubs against a real endpoint.
//!
//! The model itself (profiles, hub machines, the network core, the discrete-event [`Simulation`])
//! is the `csp-model` crate and runs without any runtime; [`simulate`] is its virtual-time run. This
//! crate adds only what real time needs:
//!
//! - [`clock`]: scenario time mapped onto the (scaled) tokio clock;
//! - [`sink`]: the seam to the endpoint ([`Sink`]) and an in-process endpoint that acks at once;
//! - [`drive`](mod@drive): [`drive()`] runs the same simulation paced by the clock, a bounded
//!   look-ahead ahead of it, and hands each alert to the sink at its intended time, measuring how
//!   late it was.
//!
//! Every hub remains a virtual hub: one [`csp_model::hub::HubMachine`] each, stepped by the one
//! simulation loop; none has a task or a timer of its own.

pub mod clock;
pub mod drive;
pub mod sink;

pub use clock::ScenarioClock;
pub use csp_model::{
    Files, Outbound, Profile, ProfileError, ProfileSource, SimError, Simulation, device_id, tweak,
    units,
};
pub use drive::{DriveConfig, DriveError, DriveReport, Progress, drive, simulate, simulate_shard};
pub use ledger::Shard;
pub use sink::{InstantAckSink, Sink};
