//! Which runs are drawn together and how each is named: regions and options come from the runs'
//! own metadata (never from a list in the code), in the order the user gave them; within a region
//! the options the DP096 seed table knows come first, in its order, so Current, Option A and
//! Option B keep their place and colour on every graph.
//!
//! A region is only ever compared, grouped and printed here (`==`, [`Region::as_str`],
//! `Display`), so a new region is a new profile, not new code.

use crate::calibration;
use ledger::Region;
use results::LoadedRun;

/// The runs of one region, in report order, with the names and style slots they are shown with.
#[derive(Debug, Clone)]
pub struct RunGroup<'a> {
    /// The region, as the runs' metadata gives it.
    pub region: &'a Region,
    /// Its runs, in report order.
    pub runs: Vec<&'a LoadedRun>,
    /// One name per run ([`run_labels`]).
    pub labels: Vec<String>,
    /// One style slot per run ([`style_slots`]).
    pub slots: Vec<usize>,
}

/// Groups runs by region: regions in the order they first appear, runs within a region in
/// report order ([`sort_key`]).
pub fn by_region<'a>(runs: &[&'a LoadedRun]) -> Vec<RunGroup<'a>> {
    let mut groups: Vec<RunGroup<'a>> = Vec::new();
    for &r in runs {
        let region = &r.summary.meta.region;
        match groups.iter_mut().find(|g| g.region == region) {
            Some(g) => g.runs.push(r),
            None => groups.push(RunGroup {
                region,
                runs: vec![r],
                labels: Vec::new(),
                slots: Vec::new(),
            }),
        }
    }
    for g in &mut groups {
        g.runs.sort_by_key(|r| sort_key(r));
        g.labels = run_labels(&g.runs);
        g.slots = style_slots(&g.runs);
    }
    groups
}

/// Report order within a region: the seed table's options in its order, then other options by
/// label, then by seed.
pub fn sort_key(r: &LoadedRun) -> (usize, String, u64) {
    let m = &r.summary.meta;
    (
        calibration::option_index(&m.option_label).unwrap_or(usize::MAX),
        m.option_label.clone(),
        m.seed,
    )
}

/// The option as people write it: each word of the label capitalised (`option-a` → `Option A`,
/// `current` → `Current`); a label's own list of changes (`custom: 3,4`) is left to
/// [`run_labels`], which names them from the metadata.
pub fn option_name(option_label: &str) -> String {
    let label = option_label.split(':').next().unwrap_or(option_label);
    // `option-b+location-aware`: an option plus named changes, which are hypothetical (not in
    // DP096) and say so in every label that names them.
    if let Some((base, named)) = label.split_once('+') {
        return format!(
            "{} + {} (hypothetical)",
            option_name(base),
            named.replace('+', " + ")
        );
    }
    label
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names for the runs on legends and tables: the option (with its changes when it is not one of
/// the seed table's options), with the seed and then a number added only where two runs would
/// otherwise share a name.
pub fn run_labels(runs: &[&LoadedRun]) -> Vec<String> {
    let base: Vec<String> = runs
        .iter()
        .map(|r| {
            let m = &r.summary.meta;
            let name = option_name(&m.option_label);
            if calibration::option_index(&m.option_label).is_none()
                && !m.changes.is_empty()
                && !m.option_label.contains('+')
            {
                format!("{name} (changes {})", m.changes.join(","))
            } else {
                name
            }
        })
        .collect();
    let mut out: Vec<String> = base
        .iter()
        .zip(runs)
        .map(|(b, r)| {
            if base.iter().filter(|x| *x == b).count() > 1 {
                format!("{b}, seed {}", r.summary.meta.seed)
            } else {
                b.clone()
            }
        })
        .collect();
    let snapshot = out.clone();
    for (i, l) in out.iter_mut().enumerate() {
        if snapshot.iter().filter(|x| *x == l).count() > 1 {
            l.push_str(&format!(" #{}", i + 1));
        }
    }
    out
}

/// Style slots: each of the seed table's options always gets its own slot (its index), so a
/// colour means the same option on every graph; other runs and repeats take the next free slots.
pub fn style_slots(runs: &[&LoadedRun]) -> Vec<usize> {
    let known = calibration::options().len();
    let mut taken = vec![false; known];
    let mut next = known;
    runs.iter()
        .map(
            |r| match calibration::option_index(&r.summary.meta.option_label) {
                Some(i) if !taken[i] => {
                    taken[i] = true;
                    i
                }
                _ => {
                    next += 1;
                    next - 1
                }
            },
        )
        .collect()
}

/// The loss causes that occur in any of `runs` (either alert kind, any of their seeds), in
/// report order.
pub fn causes_present(runs: &[&LoadedRun]) -> Vec<ledger::LossCause> {
    ledger::LossCause::ALL
        .iter()
        .copied()
        .filter(|c| {
            runs.iter().any(|r| {
                ledger::AlertKind::ALL.iter().any(|&k| {
                    r.summary
                        .kind(k)
                        .loss_by_cause
                        .get(c)
                        .is_some_and(|n| *n > 0)
                        || r.summary
                            .seeds
                            .as_ref()
                            .is_some_and(|s| s.kind(k).cause(*c).is_some_and(|s| s.max > Some(0.0)))
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names_come_from_the_label() {
        assert_eq!(option_name("option-a"), "Option A");
        assert_eq!(option_name("current"), "Current");
        assert_eq!(option_name("storm_2030"), "Storm 2030");
        assert_eq!(option_name("custom: 3,4"), "Custom");
        assert_eq!(
            option_name("option-b+location-aware"),
            "Option B + location-aware (hypothetical)"
        );
    }
}
