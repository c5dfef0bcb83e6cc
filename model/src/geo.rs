//! Outage geography: how many cells an outage spans, and a storm's several outages laid out over
//! premises and cells.
//!
//! A profile's `[scenario]` describes its main outage (premises, cells, cut, duration); `[[outage]]`
//! entries add further outages that share the head-end, the throttles and the DSP. An outage's
//! footprint is either an explicit number of cells (`cells = 21`: a concentrated outage) or follows
//! from a density (`cells = { premises_per_cell = 1428.6 }`: the outage spans as many cells as its
//! premises fill at that density, so a bigger outage covers more cells), or it lies in the cells of
//! another outage (`cells = { shared_with = "main" }`).
//!
//! [`Population`] numbers every premises and every cell of the run: outages take consecutive
//! premises indices in the order they are declared (the main outage first), and outages with cells
//! of their own take consecutive cell indices. Everything here is a pure function of the profile.
//! This module draws nothing at random and never reads a file.

use crate::units::{Dur, NonZeroCount, OutageDist, PositiveReal};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The name the scenario's own outage (`[scenario]`) goes by in results.
pub const MAIN_OUTAGE: &str = "main";

/// How many cells an outage spans.
#[derive(Debug, Clone, PartialEq)]
pub enum Cells {
    /// Exactly this many cells (a concentrated outage).
    Count(NonZeroCount),
    /// As many cells as the premises fill at this density: ceil(premises / premises_per_cell).
    Density {
        /// Premises per cell where the outage is (a property of the region's geography).
        premises_per_cell: PositiveReal,
    },
    /// In the cells of another outage (`[[outage]]` entries only).
    Shared {
        /// The outage whose cells it lies in.
        shared_with: String,
    },
}

impl Cells {
    /// The cells `premises` premises span: the count, or ceil(premises / density) (at least 1,
    /// at most one per premises). `None` for [`Cells::Shared`] (the host decides).
    pub fn count_for(&self, premises: u32) -> Option<u32> {
        match self {
            Cells::Count(n) => Some(n.0),
            Cells::Density { premises_per_cell } => {
                Some(cells_at_density(premises, premises_per_cell.0))
            }
            Cells::Shared { .. } => None,
        }
    }
}

/// ceil(premises / density), at least 1 and at most `premises` (a hair under an integer counts as
/// that integer, so 30,000 premises at 1,428.6 per cell are 21 cells).
pub fn cells_at_density(premises: u32, per_cell: f64) -> u32 {
    let x = f64::from(premises) / per_cell;
    ((x - 1e-6).ceil().max(1.0) as u32).min(premises.max(1))
}

impl<'de> Deserialize<'de> for Cells {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(i64),
            Table(toml::Table),
        }
        const WHAT: &str =
            "a number of cells, { premises_per_cell = N } or { shared_with = \"outage\" }";
        let raw = Raw::deserialize(d).map_err(|_| de::Error::custom(format!("expected {WHAT}")))?;
        match raw {
            Raw::Count(n) => {
                let n = u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
                    de::Error::custom(format!("cells must be at least 1, got {n}"))
                })?;
                Ok(Cells::Count(NonZeroCount(n)))
            }
            Raw::Table(t) => {
                let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                match (keys.as_slice(), t.values().next()) {
                    (["premises_per_cell"], Some(v)) => {
                        let x = v
                            .as_float()
                            .or_else(|| v.as_integer().map(|i| i as f64))
                            .filter(|x| x.is_finite() && *x > 0.0)
                            .ok_or_else(|| {
                                de::Error::custom(format!(
                                    "premises_per_cell must be a positive number, got {v}"
                                ))
                            })?;
                        Ok(Cells::Density {
                            premises_per_cell: PositiveReal(x),
                        })
                    }
                    (["shared_with"], Some(v)) => {
                        let name = v.as_str().ok_or_else(|| {
                            de::Error::custom(format!("shared_with names an outage, got {v}"))
                        })?;
                        Ok(Cells::Shared {
                            shared_with: name.to_string(),
                        })
                    }
                    _ => Err(de::Error::custom(format!(
                        "expected {WHAT}, got a table with {}",
                        if keys.is_empty() {
                            "no key".to_string()
                        } else {
                            keys.join(", ")
                        }
                    ))),
                }
            }
        }
    }
}

impl Serialize for Cells {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Cells::Count(n) => s.serialize_u32(n.0),
            Cells::Density { premises_per_cell } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("premises_per_cell", &premises_per_cell.0)?;
                m.end()
            }
            Cells::Shared { shared_with } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("shared_with", shared_with)?;
                m.end()
            }
        }
    }
}

/// One further outage of a storm (`[[outage]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageSpec {
    /// Its name in results (lower-case letters, digits and '-'; unique; not `main`).
    pub name: String,
    /// Premises that lose power.
    pub premises: NonZeroCount,
    /// Scenario time of its power cut.
    pub cut_at: Dur,
    /// How long each premises' power stays off.
    pub duration: OutageDist,
    /// Its footprint; absent: the scenario's density (`scenario.cells` must then be a density).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<Cells>,
}

/// The further outages of a profile (`[[outage]]`), in declaration order. A file that sets any
/// replaces the whole list it inherits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outages(pub Vec<OutageSpec>);

impl Outages {
    /// No further outage?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One outage placed on premises and cells.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageLayout {
    /// Its name (`main` for the scenario's own).
    pub name: String,
    /// Index of its first premises.
    pub first_hub: u32,
    /// Its premises.
    pub premises: u32,
    /// Index of its first cell.
    pub first_cell: u32,
    /// The cells it spans.
    pub cells: u32,
    /// The outage whose cells it lies in, if it has none of its own.
    pub shared_with: Option<String>,
    /// Scenario time of its power cut, µs.
    pub cut_us: u64,
    /// Its outage-duration distribution.
    pub duration: OutageDist,
}

impl OutageLayout {
    /// Does premises `hub` belong to this outage?
    pub fn contains(&self, hub: u32) -> bool {
        hub >= self.first_hub && hub - self.first_hub < self.premises
    }
}

/// Every outage of a run on premises and cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// The outages, main first, in declaration order.
    pub outages: Vec<OutageLayout>,
    /// Cells in the run (the largest cell index + 1).
    pub cells: u32,
    /// Premises in the run.
    pub premises: u32,
    /// Largest cell / smallest cell within an outage.
    ratio: f64,
}

/// The scenario's own outage and its further ones, as plain values (what [`Population::new`]
/// lays out).
#[derive(Debug, Clone, Copy)]
pub struct MainOutage<'a> {
    /// Premises.
    pub premises: u32,
    /// Footprint.
    pub cells: &'a Cells,
    /// Cut time.
    pub cut_at: Dur,
    /// Duration distribution.
    pub duration: OutageDist,
}

impl Population {
    /// Lays the outages out; an error names the field at fault.
    pub fn new(
        main: MainOutage<'_>,
        extra: &[OutageSpec],
        cell_size_ratio: f64,
    ) -> Result<Population, String> {
        let density = match main.cells {
            Cells::Density { premises_per_cell } => Some(premises_per_cell.0),
            Cells::Count(_) => None,
            Cells::Shared { .. } => {
                return Err(
                    "field `scenario.cells`: the scenario's outage has cells of its own (a count \
                     or { premises_per_cell = N }), it cannot share another's"
                        .into(),
                );
            }
        };
        let main_cells = main.cells.count_for(main.premises).unwrap_or(1);
        if main_cells > main.premises {
            return Err(format!(
                "field `scenario.cells`: {main_cells} cells for {} premises is impossible",
                main.premises
            ));
        }
        let mut outages = vec![OutageLayout {
            name: MAIN_OUTAGE.to_string(),
            first_hub: 0,
            premises: main.premises,
            first_cell: 0,
            cells: main_cells,
            shared_with: None,
            cut_us: main.cut_at.us(),
            duration: main.duration,
        }];
        let mut next_hub = u64::from(main.premises);
        let mut next_cell = main_cells;
        for (i, o) in extra.iter().enumerate() {
            let at = |f: &str| format!("field `outage[{}].{f}` ({})", i + 1, o.name);
            if !name_ok(&o.name) {
                return Err(format!(
                    "{}: `{}` must be non-empty lower-case ASCII letters, digits and '-'",
                    at("name"),
                    o.name
                ));
            }
            if outages.iter().any(|x| x.name == o.name) {
                return Err(format!(
                    "{}: the name `{}` is taken (`{MAIN_OUTAGE}` is the scenario's own outage)",
                    at("name"),
                    o.name
                ));
            }
            o.duration
                .check()
                .map_err(|e| format!("{}: {e}", at("duration")))?;
            let premises = o.premises.0;
            let own = |cells: u32| -> Result<(u32, u32, Option<String>), String> {
                if cells > premises {
                    return Err(format!(
                        "{}: {cells} cells for {premises} premises is impossible",
                        at("cells")
                    ));
                }
                Ok((next_cell, cells, None))
            };
            let (first_cell, cells, shared_with) = match &o.cells {
                None => match density {
                    Some(d) => own(cells_at_density(premises, d))?,
                    None => {
                        return Err(format!(
                            "{}: missing; the scenario gives no density (`scenario.cells = \
                             {{ premises_per_cell = N }}`) to derive it from",
                            at("cells")
                        ));
                    }
                },
                Some(Cells::Shared { shared_with }) => {
                    let host = outages
                        .iter()
                        .find(|x| &x.name == shared_with && x.shared_with.is_none())
                        .ok_or_else(|| {
                            format!(
                                "{}: `{shared_with}` is not an outage with cells of its own \
                                 declared before this one",
                                at("cells")
                            )
                        })?;
                    // It spans the host's first cells, as many as its size fills at the density.
                    let k = density
                        .map_or(1, |d| cells_at_density(premises, d))
                        .min(host.cells);
                    (host.first_cell, k, Some(shared_with.clone()))
                }
                Some(c) => own(c.count_for(premises).unwrap_or(1))?,
            };
            if shared_with.is_none() {
                next_cell = next_cell.checked_add(cells).ok_or("too many cells")?;
            }
            outages.push(OutageLayout {
                name: o.name.clone(),
                first_hub: u32::try_from(next_hub).map_err(|_| "too many premises")?,
                premises,
                first_cell,
                cells,
                shared_with,
                cut_us: o.cut_at.us(),
                duration: o.duration,
            });
            next_hub += u64::from(premises);
        }
        let premises = u32::try_from(next_hub)
            .map_err(|_| format!("the outages hold {next_hub} premises, more than a run can"))?;
        Ok(Population {
            outages,
            cells: next_cell,
            premises,
            ratio: cell_size_ratio,
        })
    }

    /// One outage of `premises` premises in one cell.
    pub fn single(premises: u32, cut_at: Dur, duration: OutageDist) -> Population {
        Population {
            outages: vec![OutageLayout {
                name: MAIN_OUTAGE.to_string(),
                first_hub: 0,
                premises,
                first_cell: 0,
                cells: 1,
                shared_with: None,
                cut_us: cut_at.us(),
                duration,
            }],
            cells: 1,
            premises,
            ratio: 1.0,
        }
    }

    /// Index of the outage premises `hub` belongs to.
    pub fn outage_index(&self, hub: u32) -> usize {
        self.outages
            .partition_point(|o| o.first_hub <= hub)
            .saturating_sub(1)
    }

    /// The outage premises `hub` belongs to.
    pub fn outage_of(&self, hub: u32) -> &OutageLayout {
        &self.outages[self.outage_index(hub)]
    }

    /// The (global) cell of premises `hub`: premises fill their outage's cells in index order,
    /// cell sizes growing geometrically from the smallest to the largest by the scenario's
    /// `cell_size_ratio` (1 = equal cells).
    pub fn cell_of(&self, hub: u32) -> u32 {
        let o = self.outage_of(hub);
        o.first_cell + cell_within(hub - o.first_hub, o.premises, o.cells, self.ratio)
    }
}

/// Outage names end up in JSON keys, tables and file names.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The cell (0-based, within its outage) of the `i`-th of `n` premises spread over `k` cells whose
/// sizes grow geometrically by `ratio` from the first to the last.
pub fn cell_within(i: u32, n: u32, k: u32, ratio: f64) -> u32 {
    let n = n.max(1);
    let f = (f64::from(i) + 0.5) / f64::from(n);
    if k <= 1 {
        return 0;
    }
    if (ratio - 1.0).abs() < 1e-9 {
        return ((f * f64::from(k)) as u32).min(k - 1);
    }
    // Cell i has weight r^i with r^(k-1) = ratio; the first i cells hold (r^i - 1)/(r - 1).
    let r = ratio.powf(1.0 / f64::from(k - 1));
    let total = (r.powi(k as i32) - 1.0) / (r - 1.0);
    let c = (1.0 + f * total * (r - 1.0)).ln() / r.ln();
    (c.max(0.0) as u32).min(k - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(s: &str) -> Dur {
        Dur::parse(s).unwrap_or_default()
    }

    fn fixed(s: &str) -> OutageDist {
        OutageDist::Fixed { duration: dur(s) }
    }

    fn extra(name: &str, premises: u32, cells: Option<Cells>) -> OutageSpec {
        OutageSpec {
            name: name.into(),
            premises: NonZeroCount(premises),
            cut_at: dur("2m"),
            duration: fixed("30m"),
            cells,
        }
    }

    #[test]
    fn density_gives_the_seed_footprints_and_grows_with_size() {
        assert_eq!(cells_at_density(30_000, 1428.6), 21);
        assert_eq!(cells_at_density(30_000, 1500.0), 20);
        assert_eq!(cells_at_density(250, 1428.6), 1);
        assert_eq!(cells_at_density(1_000_000, 1428.6), 700);
        assert_eq!(
            cells_at_density(1, 0.01),
            1,
            "never more cells than premises"
        );
    }

    #[test]
    fn outages_take_consecutive_premises_and_own_or_shared_cells() {
        let density = Cells::Density {
            premises_per_cell: PositiveReal(1000.0),
        };
        let main = MainOutage {
            premises: 5_000,
            cells: &density,
            cut_at: dur("0s"),
            duration: fixed("16m"),
        };
        let pop = Population::new(
            main,
            &[
                extra("a", 40, None),
                extra(
                    "b",
                    1_500,
                    Some(Cells::Shared {
                        shared_with: "main".into(),
                    }),
                ),
                extra("c", 30, Some(Cells::Count(NonZeroCount(3)))),
            ],
            1.0,
        )
        .unwrap();
        let o = &pop.outages;
        assert_eq!((o[0].first_cell, o[0].cells), (0, 5));
        assert_eq!((o[1].first_hub, o[1].first_cell, o[1].cells), (5_000, 5, 1));
        assert_eq!((o[2].first_hub, o[2].first_cell, o[2].cells), (5_040, 0, 2));
        assert_eq!((o[3].first_hub, o[3].first_cell, o[3].cells), (6_540, 6, 3));
        assert_eq!((pop.premises, pop.cells), (6_570, 9));
        assert_eq!(pop.outage_of(4_999).name, "main");
        assert_eq!(pop.outage_of(5_000).name, "a");
        assert_eq!(pop.outage_of(6_569).name, "c");
        assert_eq!(pop.cell_of(5_039), 5);
        assert_eq!(pop.cell_of(5_040), 0, "b lies in main's first cells");
        assert_eq!(pop.cell_of(6_539), 1);
        assert_eq!(pop.cell_of(6_569), 8);
    }

    #[test]
    fn bad_outages_are_refused_by_field() {
        let count = Cells::Count(NonZeroCount(4));
        let main = MainOutage {
            premises: 100,
            cells: &count,
            cut_at: dur("0s"),
            duration: fixed("16m"),
        };
        let e = Population::new(main, &[extra("a", 5, None)], 1.0).unwrap_err();
        assert!(
            e.contains("outage[1].cells") && e.contains("density"),
            "{e}"
        );
        let e = Population::new(main, &[extra("main", 5, Some(count.clone()))], 1.0).unwrap_err();
        assert!(e.contains("outage[1].name") && e.contains("taken"), "{e}");
        let shared = |to: &str| {
            Some(Cells::Shared {
                shared_with: to.into(),
            })
        };
        let e = Population::new(main, &[extra("a", 5, shared("zz"))], 1.0).unwrap_err();
        assert!(e.contains("`zz`"), "{e}");
        let e = Population::new(main, &[extra("a", 2, Some(count.clone()))], 1.0).unwrap_err();
        assert!(e.contains("impossible"), "{e}");
        let e = Population::new(main, &[extra("A b", 2, None)], 1.0).unwrap_err();
        assert!(e.contains("outage[1].name"), "{e}");
    }
}
