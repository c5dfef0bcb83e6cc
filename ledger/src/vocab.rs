//! The words every crate uses for alerts: kind, per-kind map, GBCS code, loss cause, alert id.
//!
//! Plain values with no behaviour beyond naming and conversion; nothing here knows the network model,
//! the transport or the reports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Index, IndexMut};

/// The two alerts a premises' power cut produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// Power Outage Alert (AD1), sent when power has been off 3 minutes or more.
    Poa,
    /// Power Restoration Alert (8F35 / 8F36), sent when power returns.
    Pra,
}

impl AlertKind {
    /// Both kinds, POA first.
    pub const ALL: [AlertKind; 2] = [AlertKind::Poa, AlertKind::Pra];

    /// Lower-case name as used in files and JSON keys (`poa`, `pra`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Poa => "poa",
            AlertKind::Pra => "pra",
        }
    }

    /// 0 for POA, 1 for PRA: the low bit of an [`AlertId`].
    pub(crate) fn bit(self) -> u64 {
        match self {
            AlertKind::Poa => 0,
            AlertKind::Pra => 1,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertKind::Poa => "POA",
            AlertKind::Pra => "PRA",
        })
    }
}

/// One value per alert kind, indexed by [`AlertKind`] (instead of a `[T; 2]` indexed by a number
/// that could be any number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PerKind<T> {
    /// The POA's value.
    pub poa: T,
    /// The PRA's value.
    pub pra: T,
}

impl<T> PerKind<T> {
    /// A map from its two values.
    pub const fn new(poa: T, pra: T) -> Self {
        PerKind { poa, pra }
    }

    /// A map whose value for each kind is `f(kind)`, POA first.
    pub fn from_fn(mut f: impl FnMut(AlertKind) -> T) -> Self {
        let poa = f(AlertKind::Poa);
        let pra = f(AlertKind::Pra);
        PerKind { poa, pra }
    }

    /// `(kind, value)` pairs, POA first.
    pub fn iter(&self) -> impl Iterator<Item = (AlertKind, &T)> {
        [(AlertKind::Poa, &self.poa), (AlertKind::Pra, &self.pra)].into_iter()
    }

    /// The map with `f` applied to each value, POA first.
    pub fn map<U>(self, mut f: impl FnMut(AlertKind, T) -> U) -> PerKind<U> {
        let poa = f(AlertKind::Poa, self.poa);
        let pra = f(AlertKind::Pra, self.pra);
        PerKind { poa, pra }
    }
}

impl<T> Index<AlertKind> for PerKind<T> {
    type Output = T;
    fn index(&self, kind: AlertKind) -> &T {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }
}

impl<T> IndexMut<AlertKind> for PerKind<T> {
    fn index_mut(&mut self, kind: AlertKind) -> &mut T {
        match kind {
            AlertKind::Poa => &mut self.poa,
            AlertKind::Pra => &mut self.pra,
        }
    }
}

/// The GBCS alert codes carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertCode {
    /// AD1 'Power Outage Event' (POA), from the Communications Hub.
    #[serde(rename = "AD1")]
    Ad1,
    /// 8F35 'Supply Outage Restored' (PRA, any outage).
    #[serde(rename = "8F35")]
    Restored8F35,
    /// 8F36 'Supply Outage Restored (Outage >= three minutes)' (PRA).
    #[serde(rename = "8F36")]
    Restored8F36,
}

impl AlertCode {
    /// The 16-bit value used on the wire (see `docs/protocol.md`).
    pub fn wire(self) -> u16 {
        match self {
            AlertCode::Ad1 => 0x0AD1,
            AlertCode::Restored8F35 => 0x8F35,
            AlertCode::Restored8F36 => 0x8F36,
        }
    }

    /// Parses a 16-bit wire value.
    pub fn from_wire(v: u16) -> Option<Self> {
        match v {
            0x0AD1 => Some(AlertCode::Ad1),
            0x8F35 => Some(AlertCode::Restored8F35),
            0x8F36 => Some(AlertCode::Restored8F36),
            _ => None,
        }
    }

    /// The kind of alert this code reports.
    pub fn kind(self) -> AlertKind {
        match self {
            AlertCode::Ad1 => AlertKind::Poa,
            AlertCode::Restored8F35 | AlertCode::Restored8F36 => AlertKind::Pra,
        }
    }

    /// The code as written in the GBCS tables (`AD1`, `8F35`, `8F36`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertCode::Ad1 => "AD1",
            AlertCode::Restored8F35 => "8F35",
            AlertCode::Restored8F36 => "8F36",
        }
    }
}

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`LossCause`], its report order [`LossCause::ALL`] and its names from one list, so a new
/// cause cannot be left out of `ALL` or given a name that differs from its JSON key.
macro_rules! loss_causes {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// Why an expected alert was never acknowledged by the endpoint.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum LossCause {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl LossCause {
            /// Every cause, in report order.
            pub const ALL: [LossCause; [$($name),*].len()] = [$(LossCause::$variant),*];

            /// The snake_case name used in JSON and tables.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( LossCause::$variant => $name, )*
                }
            }
        }
    };
}

loss_causes! {
    /// Every attempt on the shared radio channel collided, up to the retry limit.
    Collision => "collision",
    /// The hub's battery/super-capacitor ran out before the alert got through.
    HoldoverExpired => "holdover_expired",
    /// The hub could not re-attach to the cellular network after the power returned.
    AttachFailure => "attach_failure",
    /// A bounded queue in the CSP/DSP path (head-end, throttle, motorway) was full.
    QueueOverflow => "queue_overflow",
    /// The harness's own bounded send queue towards the endpoint was full.
    SendQueueOverflow => "send_queue_overflow",
    /// The endpoint answered with a reject.
    EndpointRejected => "endpoint_rejected",
    /// The endpoint could not be reached (or stopped answering) before the alert's deadline.
    EndpointUnreachable => "endpoint_unreachable",
    /// Still in flight when the run ended.
    NotDeliveredByEnd => "not_delivered_by_end",
    /// Never sent on its own: the CSP folded it into a summary alert for its cell (a hypothetical
    /// option, not in DP096), and the endpoint acknowledged that summary. The endpoint learnt a
    /// count that includes this premises, not this premises' alert.
    CoveredBySummary => "covered_by_summary",
}

impl fmt::Display for LossCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run-unique alert id: the premises (hub) index and the alert kind.
///
/// One outage per premises per run, so `hub * 2 + kind` is unique and dense (the ledger indexes by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub u64);

impl AlertId {
    /// The id of `kind` for premises `hub`.
    pub fn new(hub: u32, kind: AlertKind) -> Self {
        AlertId(u64::from(hub) * 2 + kind.bit())
    }

    /// The premises index.
    pub fn hub(self) -> u32 {
        (self.0 / 2) as u32
    }

    /// The alert kind.
    pub fn kind(self) -> AlertKind {
        if self.0.is_multiple_of(2) {
            AlertKind::Poa
        } else {
            AlertKind::Pra
        }
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_round_trip() {
        assert_eq!(AlertId::new(7, AlertKind::Poa).0, 14);
        let id = AlertId::new(7, AlertKind::Pra);
        assert_eq!(id.0, 15);
        assert_eq!(id.hub(), 7);
        assert_eq!(id.kind(), AlertKind::Pra);
        assert_eq!(AlertId::new(7, AlertKind::Poa).kind(), AlertKind::Poa);
        assert_eq!(AlertId(u64::from(u32::MAX) * 2 + 1).hub(), u32::MAX);
        assert_eq!(id.to_string(), "15");
    }

    #[test]
    fn kinds_have_their_names() {
        assert_eq!(AlertKind::Poa.as_str(), "poa");
        assert_eq!(AlertKind::Pra.as_str(), "pra");
        assert_eq!(AlertKind::Poa.to_string(), "POA");
        assert_eq!(AlertKind::Pra.to_string(), "PRA");
        assert_eq!(
            serde_json::to_string(&AlertKind::ALL).unwrap(),
            r#"["poa","pra"]"#
        );
    }

    #[test]
    fn a_per_kind_map_keeps_each_kind_apart() {
        let mut m = PerKind::new(1, 2);
        assert_eq!((m[AlertKind::Poa], m[AlertKind::Pra]), (1, 2));
        m[AlertKind::Pra] += 10;
        m[AlertKind::Poa] -= 1;
        assert_eq!(m, PerKind::new(0, 12));
        assert_eq!(
            PerKind::from_fn(AlertKind::as_str),
            PerKind::new("poa", "pra")
        );
        let pairs: Vec<_> = m.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(pairs, [(AlertKind::Poa, 0), (AlertKind::Pra, 12)]);
        assert_eq!(
            m.map(|k, v| format!("{k}{v}")),
            PerKind::new("POA0".to_string(), "PRA12".to_string())
        );
    }

    #[test]
    fn codes_round_trip_on_the_wire_with_their_documented_values() {
        let table = [
            (AlertCode::Ad1, 0x0AD1, "AD1", AlertKind::Poa),
            (AlertCode::Restored8F35, 0x8F35, "8F35", AlertKind::Pra),
            (AlertCode::Restored8F36, 0x8F36, "8F36", AlertKind::Pra),
        ];
        for (c, wire, name, kind) in table {
            assert_eq!(c.wire(), wire);
            assert_eq!(AlertCode::from_wire(wire), Some(c));
            assert_eq!(c.as_str(), name);
            assert_eq!(c.to_string(), name);
            assert_eq!(c.kind(), kind);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{name}\""));
        }
        assert_eq!(AlertCode::from_wire(0x1234), None);
        assert_eq!(AlertCode::from_wire(0), None);
    }

    #[test]
    fn every_loss_cause_is_listed_once_under_its_json_name() {
        let names: Vec<&str> = LossCause::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "collision",
                "holdover_expired",
                "attach_failure",
                "queue_overflow",
                "send_queue_overflow",
                "endpoint_rejected",
                "endpoint_unreachable",
                "not_delivered_by_end",
                "covered_by_summary"
            ]
        );
        for c in LossCause::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            let back: LossCause = serde_json::from_str(&format!("\"{}\"", c.as_str())).unwrap();
            assert_eq!(back, c);
        }
    }
}
