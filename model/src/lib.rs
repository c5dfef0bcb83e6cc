//! The CSP/DSP network model of csp-loadtest, without any I/O or async runtime.
//!
//! - [`profile`], [`units`]: load profiles (layered TOML, technical-change overlays, validation):
//!   the region as data and the access mechanism it chooses.
//! - [`geo`]: outage geography: how many cells an outage spans (a count or a density), and a
//!   storm's several outages laid out over premises and cells.
//! - [`scenario`]: which premises lose power, when, for how long; the alerts they must produce.
//! - [`hub`]: the sans-IO hub state machine (shared radio: holdover, windows, contention, retries;
//!   cellular: reboot, dither, attach).
//! - [`channel`], [`stage`], [`network`]: the sans-IO transport (slotted contention, queues, token
//!   buckets) behind the [`NetworkCore`] driving contract.
//! - [`tweak`]: a resolved profile with one key changed (what sweeps and sensitivity vary), and the
//!   parameters its files tag `[cal]` (found in the comments, never listed by hand).
//! - [`sim`]: every hub and the network as one discrete-event [`Simulation`] with a driving contract
//!   (inputs, outputs, next wake-up), and [`simulate`] on virtual time.
//!
//! Loss and delay come only from the modelled mechanisms and the parameters in the profile. Time
//! enters only as an argument; this crate must never read a clock, spawn a thread or touch a socket
//! (the real-time driver is the `virtual-hubs` crate).

pub mod channel;
pub mod geo;
pub mod hub;
pub mod network;
pub mod profile;
pub mod scenario;
pub mod sim;
pub mod stage;
pub mod tweak;
pub mod units;

pub use network::{NetworkCore, NetworkStats};
pub use profile::{Files, Profile, ProfileError, ProfileSource};
pub use sim::{Event, Outbound, SimError, SimReport, Simulation, device_id, simulate};
