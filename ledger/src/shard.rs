//! Shards: one run split over several processes (or Kubernetes pods), each sending a share of the
//! alerts while the union of the shards is exactly the one run.
//!
//! Every shard runs the whole deterministic model; shard `I` of `N` keeps the alerts of the
//! premises whose index is `I` modulo `N`: it expects, sends and records only those. Both alerts
//! of a premises (its POA and its PRA) are always in the same shard, so anything judged per
//! premises (a PRA delivered before its POA) is judged within one shard. Round-robin rather than
//! ranges of premises: premises are laid out cell by cell, so a range would give one shard whole
//! cells and their bursts, while round-robin gives every shard about 1/N of every cell and of every
//! moment's load.

use crate::AlertId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (`0 <= index < count`); `0/1` is the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawShard")]
pub struct Shard {
    /// This shard's index, from 0.
    pub index: u32,
    /// How many shards the run is split into.
    pub count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    index: u32,
    count: u32,
}

impl TryFrom<RawShard> for Shard {
    type Error = String;
    fn try_from(r: RawShard) -> Result<Shard, String> {
        Shard::new(r.index, r.count)
    }
}

impl Shard {
    /// The whole run, unsplit.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; refused unless `count >= 1` and `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("a run is split into at least 1 shard".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices run 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// Is this the whole run (one shard)?
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Does this shard own premises `hub`?
    pub fn owns_hub(self, hub: u32) -> bool {
        hub % self.count == self.index
    }

    /// Does this shard own the alert?
    pub fn owns(self, id: AlertId) -> bool {
        self.owns_hub(id.hub())
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `I/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a shard: write INDEX/COUNT, e.g. 0/4"))?;
        let num = |t: &str, what: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: the {what} {t:?} is not a whole number"))
        };
        Shard::new(num(i, "index")?, num(n, "count")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AlertKind;

    #[test]
    fn every_premises_belongs_to_exactly_one_shard_with_both_its_alerts() {
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        for hub in 0..1000 {
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns_hub(hub)).collect();
            assert_eq!(owners.len(), 1, "hub {hub}");
            for kind in AlertKind::ALL {
                assert!(owners[0].owns(AlertId::new(hub, kind)));
            }
        }
        // Each gets a quarter of any run of consecutive premises (a cell).
        for s in &shards {
            assert_eq!((100..200).filter(|&h| s.owns_hub(h)).count(), 25);
        }
        assert!((0..50).all(|h| Shard::WHOLE.owns_hub(h)));
        assert!(Shard::WHOLE.is_whole() && !shards[0].is_whole());
    }

    #[test]
    fn parses_prints_and_refuses() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::new(2, 4).unwrap().to_string(), "2/4");
        for bad in ["4/4", "0/0", "1", "a/4", "-1/4", "1/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!("4/4".parse::<Shard>().unwrap_err().contains("0 to 3"));
        let json = serde_json::to_string(&Shard::new(1, 3).unwrap()).unwrap();
        assert_eq!(json, r#"{"index":1,"count":3}"#);
        assert_eq!(
            serde_json::from_str::<Shard>(&json).unwrap(),
            Shard::new(1, 3).unwrap()
        );
        assert!(serde_json::from_str::<Shard>(r#"{"index":3,"count":3}"#).is_err());
    }
}
