//! The requirements drawn on the graphs and checked in the tables, with their sources (see
//! docs/model.md, section 9): SEC H3.14(g) as the DP096 seed states it (and its relaxation agreed in the
//! modification), the DNOs' ENA requirements (Oct 2019), and the 99.5% reliability level.

use ledger::AlertKind;

/// A time limit after the alert's base (power cut for POA, restoration for PRA).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deadline {
    /// Short label for legends and tables.
    pub label: &'static str,
    /// Seconds after the base.
    pub seconds: u64,
}

/// The reliability the DNOs require (share of alerts, percent).
pub const RELIABILITY_PCT: f64 = 99.5;

/// The deadlines that apply to an alert kind, earliest first.
pub fn deadlines(kind: AlertKind) -> &'static [Deadline] {
    match kind {
        AlertKind::Poa => &[
            Deadline {
                label: "SEC H3.14(g): 4:00 (3 min + 60 s)",
                seconds: 240,
            },
            Deadline {
                label: "SEC relaxed: 5:00 (3 min + 120 s)",
                seconds: 300,
            },
            Deadline {
                label: "DNO (ENA): 5:00",
                seconds: 300,
            },
        ],
        AlertKind::Pra => &[
            Deadline {
                label: "SEC H3.14(g): 1:00",
                seconds: 60,
            },
            Deadline {
                label: "DNO (ENA): 1:00",
                seconds: 60,
            },
            Deadline {
                label: "SEC relaxed: 2:00",
                seconds: 120,
            },
        ],
    }
}

/// Deadlines that fall at the same time, merged into one line: (seconds, joined labels).
pub fn deadline_lines(kind: AlertKind) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    for d in deadlines(kind) {
        match out.iter_mut().find(|(s, _)| *s == d.seconds) {
            Some((_, label)) => {
                label.push_str(" = ");
                label.push_str(d.label);
            }
            None => out.push((d.seconds, d.label.to_string())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coinciding_deadlines_share_a_line() {
        let poa = deadline_lines(AlertKind::Poa);
        assert_eq!(poa.len(), 2);
        assert_eq!(poa[1].0, 300);
        assert!(poa[1].1.contains("DNO"));
        assert_eq!(deadline_lines(AlertKind::Pra).len(), 2);
    }
}
