//! The alerts a lane has sent and not yet seen answered, in the order they were sent.
//!
//! Replies mostly come back in send order (csp-alert acknowledges each read's frames in order), so
//! the answered alert is almost always the oldest one: finding it costs one comparison, where a
//! hash map cost a hash and a probe for every insert and every removal (together ~40% of what the
//! engine added to raw QUIC per alert). Replies out of order (HTTP/2 and HTTP/3 answer requests as
//! they finish) are found by a scan of the window; answered entries leave a hole that is dropped
//! once it reaches the front, and the holes are compacted away whenever they outnumber the live
//! entries, so the scan never covers more than about twice the window, however long one alert
//! stays unanswered. Whatever is left goes back to the queue in send order.
//!
//! It holds alerts only; it never records a fate (the engine does).

use ledger::AlertId;
use std::collections::VecDeque;

/// Holes tolerated before a compaction, beyond as many as there are live entries.
const SLACK: usize = 16;

/// The in-flight alerts of one lane, in send order. `T` is what is kept per alert.
#[derive(Debug)]
pub(crate) struct InFlight<T> {
    /// Send order; `None` once answered (a hole).
    slots: VecDeque<Option<(AlertId, T)>>,
    live: usize,
}

impl<T> InFlight<T> {
    /// An empty set with room for `cap` alerts.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        InFlight {
            slots: VecDeque::with_capacity(cap),
            live: 0,
        }
    }

    /// Alerts in flight.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds an alert just sent (after every alert sent before it).
    pub(crate) fn push(&mut self, id: AlertId, item: T) {
        self.slots.push_back(Some((id, item)));
        self.live += 1;
    }

    /// Removes and returns the alert `id`, if it is in flight here.
    pub(crate) fn remove(&mut self, id: AlertId) -> Option<T> {
        // The oldest alert first: after `tidy` the front is never a hole.
        let item = if matches!(self.slots.front(), Some(Some((i, _))) if *i == id) {
            self.slots.pop_front().flatten().map(|(_, item)| item)
        } else {
            let at = self
                .slots
                .iter()
                .position(|s| matches!(s, Some((i, _)) if *i == id))?;
            self.slots[at].take().map(|(_, item)| item)
        };
        self.live -= 1;
        self.tidy();
        item
    }

    /// Removes every alert for which `pred` holds; returns their ids (in send order).
    pub(crate) fn remove_where(&mut self, mut pred: impl FnMut(&T) -> bool) -> Vec<AlertId> {
        let mut gone = Vec::new();
        for s in self.slots.iter_mut() {
            if let Some((id, item)) = s
                && pred(item)
            {
                gone.push(*id);
                *s = None;
            }
        }
        self.live -= gone.len();
        self.tidy();
        gone
    }

    /// Takes everything still in flight, in send order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.live = 0;
        self.slots.drain(..).flatten().map(|(_, item)| item)
    }

    /// Drops the holes at the front, and compacts when holes outnumber live entries.
    fn tidy(&mut self) {
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
        }
        if self.slots.len() > 2 * self.live + SLACK {
            self.slots.retain(Option::is_some);
        }
    }

    /// Slots held, holes included (for tests of the bound).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: impl IntoIterator<Item = u64>) -> Vec<AlertId> {
        v.into_iter().map(AlertId).collect()
    }

    #[test]
    fn in_order_answers_leave_nothing_behind() {
        let mut f = InFlight::with_capacity(4);
        for i in 0..100 {
            f.push(AlertId(i), i * 10);
        }
        for i in 0..100 {
            assert_eq!(f.remove(AlertId(i)), Some(i * 10));
            assert_eq!(f.slots(), f.len(), "no hole is kept at the front");
        }
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn out_of_order_answers_find_their_alert_and_unknown_ids_change_nothing() {
        let mut f = InFlight::with_capacity(4);
        for i in 0..5 {
            f.push(AlertId(i), i);
        }
        assert_eq!(f.remove(AlertId(3)), Some(3));
        assert_eq!(f.remove(AlertId(3)), None, "answered once only");
        assert_eq!(f.remove(AlertId(99)), None);
        assert_eq!(f.remove(AlertId(1)), Some(1));
        assert_eq!(f.len(), 3);
        assert_eq!(f.drain().collect::<Vec<_>>(), vec![0, 2, 4], "send order");
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn one_alert_never_answered_does_not_make_the_scan_grow() {
        let mut f = InFlight::with_capacity(8);
        f.push(AlertId(0), ());
        for i in 1..10_000 {
            f.push(AlertId(i), ());
            assert_eq!(f.remove(AlertId(i)), Some(()));
            assert!(f.slots() <= 2 * f.len() + SLACK + 1, "{} slots", f.slots());
        }
        assert_eq!(f.len(), 1);
        assert_eq!(f.remove(AlertId(0)), Some(()));
    }

    #[test]
    fn remove_where_takes_exactly_the_matching_alerts_in_send_order() {
        let mut f = InFlight::with_capacity(8);
        for i in 0..10u64 {
            f.push(AlertId(i), i);
        }
        assert_eq!(f.remove_where(|v| v % 3 == 0), ids([0, 3, 6, 9]));
        assert_eq!(f.len(), 6);
        assert_eq!(f.remove_where(|_| false), ids([]));
        assert_eq!(
            f.drain().collect::<Vec<_>>(),
            vec![1, 2, 4, 5, 7, 8],
            "the rest, in send order"
        );
    }
}
