//! The shared radio channel: slotted ALOHA contention, resolved one slot at a time.
//!
//! In a slot, a channel carries an alert only if exactly one hub transmitted on it; two or more
//! transmissions collide and all are lost for that attempt. The same type serves POA and PRA (they
//! share the North alert channels). Loss therefore comes only from how many hubs pick the same
//! channel and slot, never from a drop rate. Pure: the caller passes the slot's transmissions.

/// One transmission in a slot.
#[derive(Debug)]
pub struct Tx<T> {
    /// Global channel index.
    pub channel: u32,
    /// Sender.
    pub hub: u32,
    /// Alert kind index (0 POA, 1 PRA).
    pub kind: u8,
    /// Caller's reply handle.
    pub token: T,
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
/// on arrival order, and calls `on(tx, success)` for each.
pub fn resolve_slot<T>(
    mut txs: Vec<Tx<T>>,
    stats: &mut ChannelStats,
    mut on: impl FnMut(Tx<T>, bool),
) {
    txs.sort_unstable_by_key(|t| (t.channel, t.hub, t.kind));
    let mut i = 0;
    let n = txs.len();
    let mut it = txs.into_iter().peekable();
    let mut group: Vec<Tx<T>> = Vec::new();
    while i < n {
        group.clear();
        let Some(first) = it.next() else { break };
        let ch = first.channel;
        group.push(first);
        i += 1;
        while it.peek().is_some_and(|t| t.channel == ch) {
            if let Some(t) = it.next() {
                group.push(t);
                i += 1;
            }
        }
        let ok = group.len() == 1;
        stats.transmissions += group.len() as u64;
        if ok {
            stats.successes += 1;
        } else {
            stats.collided += group.len() as u64;
            stats.collision_slots += 1;
        }
        for t in group.drain(..) {
            on(t, ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_transmission_passes_and_shared_ones_collide() {
        let txs = vec![
            Tx {
                channel: 3,
                hub: 9,
                kind: 0,
                token: 'a',
            },
            Tx {
                channel: 1,
                hub: 2,
                kind: 0,
                token: 'b',
            },
            Tx {
                channel: 3,
                hub: 4,
                kind: 0,
                token: 'c',
            },
        ];
        let mut out = Vec::new();
        let mut st = ChannelStats::default();
        resolve_slot(txs, &mut st, |t, ok| out.push((t.token, ok)));
        assert_eq!(out, vec![('b', true), ('c', false), ('a', false)]);
        assert_eq!(st.collided, 2);
        assert_eq!(st.successes, 1);
    }
}
