//! Several seeds of one scenario (`simulate --seeds N`): every seed's figures and, per headline
//! figure, the median and the min–max over the seeds — `summary.json`'s `seeds` section
//! ([`SeedSet`]).
//!
//! The seeds differ only in the model's random draws (slot contention and collisions, dither,
//! attach failures, outage lengths), so the spread says how much of a figure is chance within
//! the model. It says nothing about how well the model's parameters are calibrated.
//!
//! The **median** is always one seed's figure: the middle one, and for an even number of seeds
//! the worse of the two middle ones (the later time, the smaller share, the larger loss). The
//! same rule applied at every instant to the seeds' delivery curves ([`band_at`]) gives the median
//! curve, which therefore passes exactly through the median times. A level a seed never reached
//! counts as later than any time.
//!
//! This module only computes; it never reads files or a clock.

use crate::record::{Alerts, KindSummary, LEVELS, Summary, pct_key};
use ledger::{AlertKind, LossCause};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One figure over the seeds. `null` values are levels never reached (times only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (one seed's figure, see the module doc).
    pub median: Option<f64>,
    /// The smallest value (for times: the earliest; `null` only when no seed reached the level).
    pub min: Option<f64>,
    /// The largest value (for times: the latest; `null` when some seed never reached the level).
    pub max: Option<f64>,
    /// The seed with the worst value (latest time, smallest share, largest loss); the first such
    /// seed in the order run.
    pub worst_seed: u64,
}

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    /// Larger is worse (times, losses); `None` (never) is the worst of all.
    Higher,
    /// Smaller is worse (shares delivered).
    Lower,
}

impl Spread {
    /// The spread of one figure over seeds: `(seed, value)` in the order run; `None` is a level
    /// never reached (worse than any value).
    pub fn of(values: &[(u64, Option<f64>)], worse: Worse) -> Spread {
        // Badness: larger is worse; a level never reached is infinitely late.
        let bad = |v: Option<f64>| match (worse, v) {
            (_, None) => f64::INFINITY,
            (Worse::Higher, Some(v)) => v,
            (Worse::Lower, Some(v)) => -v,
        };
        let mut order: Vec<usize> = (0..values.len()).collect();
        // Stable: among equal values the seed run first comes first.
        order.sort_by(|&a, &b| bad(values[a].1).total_cmp(&bad(values[b].1)));
        let nums = || values.iter().map(|(_, v)| v.unwrap_or(f64::INFINITY));
        let finite = |v: f64| v.is_finite().then_some(v);
        let worst = order
            .iter()
            .copied()
            .find(|&i| bad(values[i].1) == order.last().map_or(0.0, |&l| bad(values[l].1)));
        Spread {
            median: order.get(middle(values.len())).and_then(|&i| values[i].1),
            min: finite(nums().fold(f64::INFINITY, f64::min)),
            max: finite(nums().fold(f64::NEG_INFINITY, f64::max)),
            worst_seed: worst.map_or(0, |i| values[i].0),
        }
    }

    /// The median, min and max are all the same value (every seed agrees)?
    pub fn is_single(&self) -> bool {
        self.min == self.max && self.median == self.min
    }
}

/// The index of the median in `n` values sorted from best to worst: the middle one, or for an
/// even `n` the worse of the two middle ones.
pub fn middle(n: usize) -> usize {
    n / 2
}

/// Median, min and max of the seeds' delivered shares at one instant (`fractions`, any order; it
/// is sorted in place): `(min, median, max)`. With [`middle`], the median curve is one seed's
/// share at every instant and crosses each level at the median time to it.
pub fn band_at(fractions: &mut [f64]) -> (f64, f64, f64) {
    if fractions.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    // Best (largest share) first.
    fractions.sort_by(|a, b| b.total_cmp(a));
    let n = fractions.len();
    (fractions[n - 1], fractions[middle(n)], fractions[0])
}

/// One alert kind's figures over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindSpread {
    /// delivered / expected.
    pub delivered_fraction: Spread,
    /// Alerts lost (any cause).
    pub lost: Spread,
    /// Time to X% of expected delivered, seconds, keys as in `time_to_pct_s`.
    pub time_to_pct_s: BTreeMap<String, Spread>,
    /// Alerts lost per cause (every cause any seed lost alerts to; 0 for a seed that lost none).
    pub loss_by_cause: BTreeMap<LossCause, Spread>,
}

impl KindSpread {
    fn of(seeds: &[u64], kinds: &[&KindSummary]) -> KindSpread {
        let over = |f: &dyn Fn(&KindSummary) -> Option<f64>, worse| {
            let v: Vec<(u64, Option<f64>)> = seeds
                .iter()
                .copied()
                .zip(kinds.iter().map(|k| f(k)))
                .collect();
            Spread::of(&v, worse)
        };
        let causes: Vec<LossCause> = LossCause::ALL
            .into_iter()
            .filter(|c| kinds.iter().any(|k| k.loss_by_cause.contains_key(c)))
            .collect();
        KindSpread {
            delivered_fraction: over(&|k| Some(k.delivered_fraction), Worse::Lower),
            lost: over(&|k| Some(k.lost as f64), Worse::Higher),
            time_to_pct_s: LEVELS
                .iter()
                .map(|&p| (pct_key(p), over(&|k| k.time_to(p), Worse::Higher)))
                .collect(),
            loss_by_cause: causes
                .into_iter()
                .map(|c| {
                    let n = move |k: &KindSummary| {
                        Some(k.loss_by_cause.get(&c).copied().unwrap_or(0) as f64)
                    };
                    (c, over(&n, Worse::Higher))
                })
                .collect(),
        }
    }

    /// The spread of "time to `pct`%" (`None` if `pct` is not one of [`LEVELS`]).
    pub fn time_to(&self, pct: f64) -> Option<&Spread> {
        self.time_to_pct_s.get(&pct_key(pct))
    }

    /// The spread of the alerts lost to `cause` (`None`: no seed lost any to it).
    pub fn cause(&self, cause: LossCause) -> Option<&Spread> {
        self.loss_by_cause.get(&cause)
    }
}

/// One seed's figures, as its own `summary.json` would hold them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedFigures {
    /// The seed.
    pub seed: u64,
    /// Its POA and PRA figures.
    pub alerts: Alerts,
}

/// `summary.json`'s `seeds` section: the seeds run, the median and range of every headline figure
/// over them, and each seed's own figures. The rest of `summary.json` (and `alerts.csv`, the
/// `.hlog` files and `curves.csv`) is the first seed's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedSet {
    /// The seeds, in the order given; the first is the run the rest of the folder holds.
    pub list: Vec<u64>,
    /// POA figures over the seeds.
    pub poa: KindSpread,
    /// PRA figures over the seeds.
    pub pra: KindSpread,
    /// Every seed's figures, in the order of `list`.
    pub runs: Vec<SeedFigures>,
}

impl SeedSet {
    /// The set of the given runs' summaries (the first seed first). `None` for fewer than two:
    /// one seed is an ordinary run.
    pub fn of(summaries: &[&Summary]) -> Option<SeedSet> {
        if summaries.len() < 2 {
            return None;
        }
        let list: Vec<u64> = summaries.iter().map(|s| s.meta.seed).collect();
        let kind = |k: AlertKind| {
            let ks: Vec<&KindSummary> = summaries.iter().map(|s| s.kind(k)).collect();
            KindSpread::of(&list, &ks)
        };
        Some(SeedSet {
            poa: kind(AlertKind::Poa),
            pra: kind(AlertKind::Pra),
            runs: summaries
                .iter()
                .map(|s| SeedFigures {
                    seed: s.meta.seed,
                    alerts: s.alerts.clone(),
                })
                .collect(),
            list,
        })
    }

    /// The spread of any figure of one kind over the seeds (e.g. the share delivered by a
    /// deadline), by the same rules as the figures this set holds.
    pub fn spread(
        &self,
        kind: AlertKind,
        worse: Worse,
        f: impl Fn(&KindSummary) -> Option<f64>,
    ) -> Spread {
        let v: Vec<(u64, Option<f64>)> = self
            .runs
            .iter()
            .map(|r| (r.seed, f(r.alerts.kind(kind))))
            .collect();
        Spread::of(&v, worse)
    }

    /// The spreads of one kind.
    pub fn kind(&self, kind: AlertKind) -> &KindSpread {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }

    /// The seeds as people read them: `1–5` for a run of consecutive seeds, else `1, 2, 7`.
    pub fn describe(&self) -> String {
        describe_seeds(&self.list)
    }
}

/// `1–5` for consecutive ascending seeds, else the list `1, 2, 7`.
pub fn describe_seeds(seeds: &[u64]) -> String {
    let consecutive = seeds.windows(2).all(|w| w[0].checked_add(1) == Some(w[1]));
    match seeds {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if consecutive => format!("{first}–{last}"),
        _ => seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_one_seeds_figure_and_the_worse_middle_for_even_counts() {
        let t = |v: &[Option<f64>]| {
            let v: Vec<(u64, Option<f64>)> = (1..).zip(v.iter().copied()).collect();
            Spread::of(&v, Worse::Higher)
        };
        let s = t(&[Some(3.0), Some(1.0), Some(2.0)]);
        assert_eq!(
            (s.median, s.min, s.max, s.worst_seed),
            (Some(2.0), Some(1.0), Some(3.0), 1)
        );
        // Even: the later of the two middle times.
        let s = t(&[Some(1.0), Some(4.0), Some(2.0), Some(3.0)]);
        assert_eq!(s.median, Some(3.0));
        // Never reached is later than any time: the median is "never" from half the seeds on.
        let s = t(&[Some(1.0), None, Some(2.0), None]);
        assert_eq!(
            (s.median, s.min, s.max, s.worst_seed),
            (None, Some(1.0), None, 2)
        );
        let s = t(&[Some(1.0), None, Some(2.0)]);
        assert_eq!(s.median, Some(2.0));
        // Shares: smaller is worse, so the even median is the smaller middle share.
        let v: Vec<(u64, Option<f64>)> = vec![(7, Some(0.9)), (8, Some(0.8)), (9, Some(0.95))];
        let s = Spread::of(&v, Worse::Lower);
        assert_eq!((s.median, s.worst_seed), (Some(0.9), 8));
        let v: Vec<(u64, Option<f64>)> = vec![(1, Some(0.9)), (2, Some(0.8))];
        assert_eq!(Spread::of(&v, Worse::Lower).median, Some(0.8));
    }

    #[test]
    fn the_median_curve_crosses_each_level_at_the_median_time() {
        // Three and four seeds' shares at one instant.
        assert_eq!(band_at(&mut [0.4, 0.9, 0.6]), (0.4, 0.6, 0.9));
        assert_eq!(band_at(&mut [0.4, 0.9, 0.6, 0.7]), (0.4, 0.6, 0.9));
        // Four seeds reaching a level at 1, 2, 3, 4 s: at 3 s three of them are at it, and the
        // median share (the worse middle) is too; at 2.9 s only two are, and it is not. The
        // median time (the later middle) is 3 s: the curve and the time agree.
        let at = |t: f64| {
            let mut f: Vec<f64> = [1.0, 2.0, 3.0, 4.0]
                .iter()
                .map(|&r| if t >= r { 1.0 } else { 0.0 })
                .collect();
            band_at(&mut f).1
        };
        assert_eq!((at(2.9), at(3.0)), (0.0, 1.0));
        let s = Spread::of(
            &[
                (1, Some(1.0)),
                (2, Some(2.0)),
                (3, Some(3.0)),
                (4, Some(4.0)),
            ],
            Worse::Higher,
        );
        assert_eq!(s.median, Some(3.0));
    }

    #[test]
    fn seeds_are_described_as_a_range_or_a_list() {
        assert_eq!(describe_seeds(&[1, 2, 3, 4, 5]), "1–5");
        assert_eq!(describe_seeds(&[1, 2, 7]), "1, 2, 7");
        assert_eq!(describe_seeds(&[4]), "4");
    }
}
