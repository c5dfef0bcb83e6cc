//! The shared radio channel: slotted ALOHA contention, resolved one slot at a time.
//!
//! In a slot, a channel carries an alert only if exactly one hub transmitted on it; two or more
//! transmissions collide and all are lost for that attempt. The same type serves POA and PRA (they
//! share the alert channels). Loss therefore comes only from how many hubs pick the same channel and
//! slot, never from a drop rate. Pure: the caller passes the slot's transmissions.

use ledger::AlertKind;

/// One transmission in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// Global channel index.
    pub channel: u32,
    /// Sender.
    pub hub: u32,
    /// The alert it carries.
    pub kind: AlertKind,
}

/// Per-run contention counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Transmissions seen.
    pub transmissions: u64,
    /// Transmissions that got through.
    pub successes: u64,
    /// Transmissions lost to a collision.
    pub collided: u64,
    /// Slots (channel × slot) with a collision.
    pub collision_slots: u64,
}

/// Resolves one slot: sorts the transmissions by (channel, hub, kind) so the outcome never depends
/// on arrival order, and calls `on(tx, got_through)` for each, in that order.
pub fn resolve_slot(mut txs: Vec<Tx>, stats: &mut ChannelStats, mut on: impl FnMut(Tx, bool)) {
    txs.sort_unstable_by_key(|t| (t.channel, t.hub, t.kind));
    for group in txs.chunk_by(|a, b| a.channel == b.channel) {
        let ok = group.len() == 1;
        stats.transmissions += group.len() as u64;
        if ok {
            stats.successes += 1;
        } else {
            stats.collided += group.len() as u64;
            stats.collision_slots += 1;
        }
        for &t in group {
            on(t, ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(channel: u32, hub: u32, kind: AlertKind) -> Tx {
        Tx { channel, hub, kind }
    }

    #[test]
    fn a_lone_transmission_passes_and_shared_ones_collide() {
        let txs = vec![
            tx(3, 9, AlertKind::Poa),
            tx(1, 2, AlertKind::Poa),
            tx(3, 4, AlertKind::Pra),
            tx(3, 4, AlertKind::Poa),
            tx(2, 9, AlertKind::Pra),
        ];
        let mut out = Vec::new();
        let mut st = ChannelStats::default();
        resolve_slot(txs, &mut st, |t, ok| {
            out.push((t.channel, t.hub, t.kind, ok))
        });
        assert_eq!(
            out,
            vec![
                (1, 2, AlertKind::Poa, true),
                (2, 9, AlertKind::Pra, true),
                (3, 4, AlertKind::Poa, false),
                (3, 4, AlertKind::Pra, false),
                (3, 9, AlertKind::Poa, false),
            ]
        );
        assert_eq!(
            st,
            ChannelStats {
                transmissions: 5,
                successes: 2,
                collided: 3,
                collision_slots: 1
            }
        );
        // Counters add up across slots.
        resolve_slot(
            vec![tx(0, 1, AlertKind::Poa), tx(0, 2, AlertKind::Poa)],
            &mut st,
            |_, _| {},
        );
        assert_eq!(
            st,
            ChannelStats {
                transmissions: 7,
                successes: 2,
                collided: 5,
                collision_slots: 2
            }
        );
    }
}
