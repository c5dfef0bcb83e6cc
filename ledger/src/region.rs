//! The CSP region an alert crosses, as a label that comes from the profile.
//!
//! A region is data, not code: its access mechanism and parameters are in its profile, and the rest
//! of the workspace only needs to tell regions apart and print them. So [`Region`] is a name (`north`,
//! used in files, JSON and the changes file; two regions are equal when their names are) and a title
//! for people (`Central&South`). It is `Copy`: each distinct (name, title) pair is stored once for
//! the life of the process (a handful of strings), and a `Region` is a pointer to it.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};

#[derive(Debug, PartialEq, Eq)]
struct Label {
    name: &'static str,
    title: &'static str,
}

/// A CSP region: a name (identity) and a display title, both from the profile.
#[derive(Clone, Copy)]
pub struct Region(&'static Label);

/// A region name or title that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// Names end up in file names and JSON keys.
    #[error(
        "region name `{0}` must be non-empty lower-case ASCII letters, digits and '-' (e.g. `north`)"
    )]
    BadName(String),
    /// A title is what a report shows.
    #[error("region title must not be empty")]
    EmptyTitle,
}

/// The (name, title) pairs in use, each leaked once so that `Region` can be `Copy`.
static LABELS: Mutex<Vec<&'static Label>> = Mutex::new(Vec::new());

impl Region {
    /// The seed's CSP North (long-range radio). Its profile states the same name and title.
    pub const NORTH: Region = Region(&Label {
        name: "north",
        title: "North",
    });
    /// The seed's CSP Central & South (cellular). Its profile states the same name and title.
    pub const CENTRAL_SOUTH: Region = Region(&Label {
        name: "central-south",
        title: "Central&South",
    });

    /// Regions whose titles are known without their profile (results written before a region's
    /// title was recorded are read back with these).
    const KNOWN: [Region; 2] = [Region::NORTH, Region::CENTRAL_SOUTH];

    /// The codes the csp-alert/2 protocol registers for the region byte (`docs/protocol.md`): what
    /// a receiving endpoint accepts. A sender takes its code from its profile, not from here.
    const WIRE_REGISTRY: [(u8, Region); 2] = [(1, Region::NORTH), (2, Region::CENTRAL_SOUTH)];

    /// A region named `name` (lower-case letters, digits, '-') titled `title`.
    pub fn new(name: &str, title: &str) -> Result<Region, RegionError> {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(RegionError::BadName(name.to_string()));
        }
        if title.trim().is_empty() {
            return Err(RegionError::EmptyTitle);
        }
        if let Some(r) = Self::KNOWN
            .into_iter()
            .find(|r| r.0.name == name && r.0.title == title)
        {
            return Ok(r);
        }
        let mut labels = LABELS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = labels.iter().find(|l| l.name == name && l.title == title) {
            return Ok(Region(l));
        }
        let label: &'static Label = Box::leak(Box::new(Label {
            name: Box::leak(name.into()),
            title: Box::leak(title.into()),
        }));
        labels.push(label);
        Ok(Region(label))
    }

    /// The region named `name` when only its name is known (reading results back): a seed region
    /// gets its title, any other is titled by its name.
    pub fn named(name: &str) -> Result<Region, RegionError> {
        match Self::KNOWN.into_iter().find(|r| r.0.name == name) {
            Some(r) => Ok(r),
            None => Region::new(name, name),
        }
    }

    /// The name used in files, JSON and the changes file (`north`, `central-south`).
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// The title shown to people (`North`, `Central&South`).
    pub fn title(self) -> &'static str {
        self.0.title
    }

    /// The csp-alert region byte registered for the region named `name`, if any. Looks the name
    /// up without creating a region, so untrusted input (an HTTP body) cannot grow the label set.
    pub fn wire_code_of(name: &str) -> Option<u8> {
        Self::WIRE_REGISTRY
            .into_iter()
            .find(|(_, r)| r.0.name == name)
            .map(|(c, _)| c)
    }

    /// The region a csp-alert/2 region byte stands for, if the protocol registers it.
    pub fn from_wire(code: u8) -> Option<Region> {
        Self::WIRE_REGISTRY
            .into_iter()
            .find(|(c, _)| *c == code)
            .map(|(_, r)| r)
    }
}

impl PartialEq for Region {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for Region {}

impl Hash for Region {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Region {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Region {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({:?}, {:?})", self.0.name, self.0.title)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.title)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Region::named(&name).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_its_name_and_shows_its_title() {
        let east = Region::new("east", "East & Wales").unwrap();
        assert_eq!(east.as_str(), "east");
        assert_eq!(east.title(), "East & Wales");
        assert_eq!(east.to_string(), "East & Wales");
        // Equality, order and hashing go by name: a region read back from results (name only)
        // is the region its profile defined.
        let read_back: Region = serde_json::from_str("\"east\"").unwrap();
        assert_eq!(read_back, east);
        assert_eq!(read_back.title(), "east");
        assert_ne!(east, Region::NORTH);
        assert!(Region::CENTRAL_SOUTH < Region::NORTH);
        let set: std::collections::HashSet<Region> = [east, read_back].into_iter().collect();
        assert_eq!(set.len(), 1);
        let h = std::collections::hash_map::RandomState::new();
        use std::hash::BuildHasher;
        assert_eq!(
            h.hash_one(east),
            h.hash_one(read_back),
            "same name, same hash"
        );
        assert_ne!(h.hash_one(Region::NORTH), h.hash_one(Region::CENTRAL_SOUTH));
        assert_eq!(serde_json::to_string(&east).unwrap(), "\"east\"");
        // One stored label per (name, title).
        assert!(std::ptr::eq(
            Region::new("east", "East & Wales").unwrap().0,
            east.0
        ));
    }

    #[test]
    fn the_seed_regions_keep_their_titles_when_read_back() {
        for (name, title, r) in [
            ("north", "North", Region::NORTH),
            ("central-south", "Central&South", Region::CENTRAL_SOUTH),
        ] {
            let back: Region = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.title(), title);
            assert_eq!(Region::new(name, title).unwrap().title(), title);
            assert_eq!(format!("{r:?}"), format!("Region({name:?}, {title:?})"));
        }
    }

    #[test]
    fn bad_names_and_titles_are_refused() {
        for bad in ["", "North", "north east", "n/e", "é"] {
            assert_eq!(
                Region::new(bad, "X"),
                Err(RegionError::BadName(bad.to_string()))
            );
        }
        assert_eq!(Region::new("n-2", " "), Err(RegionError::EmptyTitle));
        assert!(Region::new("n-2", "N2").is_ok());
        assert!(serde_json::from_str::<Region>("\"Bad Name\"").is_err());
    }

    #[test]
    fn the_protocol_registers_codes_1_and_2() {
        assert_eq!(Region::from_wire(1), Some(Region::NORTH));
        assert_eq!(Region::from_wire(2), Some(Region::CENTRAL_SOUTH));
        assert_eq!(Region::from_wire(0), None);
        assert_eq!(Region::from_wire(3), None);
    }
}
