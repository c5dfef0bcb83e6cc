//! Load profiles: reading, layering (`extends`, change overlays), validation and resolution.
//!
//! A profile file is a *layer*: every field is optional in a file, files are merged (a file that
//! `extends` another overrides it field by field), the enabled technical changes are applied as
//! overlays from the shared change file, and only then is every field required. Each layer is parsed
//! on its own with strict types (`deny_unknown_fields`, validating newtypes), so a mistake is reported
//! with the file, line and field where it was written. This module does no simulation.
//!
//! A region is data: a profile names its region (`[region]`: name, title, wire code) and chooses
//! its access mechanism (`[access.radio]`: shared radio channels with windows and holdover, or
//! `[access.cellular]`: reboot, dither and attach). The changes file patches regions by name.
//!
//! A storm is the scenario's own outage plus `[[outage]]` entries ([`crate::geo`]); a stage may
//! carry the hypothetical `priority` and `summarise` options ([`crate::stage`]).

use crate::geo::{Cells, MainOutage, Outages, Population};
use crate::stage::{Priority, Summarise};
use crate::units::{
    AtLeastOne, Dur, DurRange, NonZeroCount, OutageDist, PositiveRate, Probability, RegionCode,
};
use ledger::text_pos::{key_on_line, line_col};
use ledger::{AlertKind, Region};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A profile that could not be read, with file, line and field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProfileError(pub String);

/// A value that can be merged from several layers and then resolved into its final form.
pub trait Layered: Sized {
    /// The resolved (complete) form.
    type Resolved;
    /// Overrides `self` with what `other` sets.
    fn merge(&mut self, other: Self);
    /// Checks completeness; `at` is the dotted path for messages.
    fn resolve(self, at: &str) -> Result<Self::Resolved, String>;
    /// What an absent value resolves to (an error, unless the value is optional).
    fn missing(at: &str) -> Result<Self::Resolved, String> {
        Err(format!(
            "missing field `{at}` (set it in the profile or a file it extends)"
        ))
    }
}

macro_rules! leaf {
    ($($t:ty),*) => {$(
        impl Layered for $t {
            type Resolved = $t;
            fn merge(&mut self, other: Self) {
                *self = other;
            }
            fn resolve(self, _at: &str) -> Result<$t, String> {
                Ok(self)
            }
        }
    )*};
}
leaf!(
    String,
    AtLeastOne,
    Dur,
    DurRange,
    NonZeroCount,
    OutageDist,
    PositiveRate,
    Probability,
    RegionCode,
    PraSource,
    PraBase,
    StageKind,
    Vec<String>,
    Cells
);

/// An optional value: absent is `None`, never an error; a layer that sets it replaces it whole.
impl<T: Clone> Layered for Option<T> {
    type Resolved = Option<T>;
    fn merge(&mut self, other: Self) {
        if other.is_some() {
            *self = other;
        }
    }
    fn resolve(self, _at: &str) -> Result<Option<T>, String> {
        Ok(self)
    }
    fn missing(_at: &str) -> Result<Option<T>, String> {
        Ok(None)
    }
}

/// `[[outage]]`: absent is no further outage; a file that sets any replaces the list it inherits.
impl Layered for Outages {
    type Resolved = Outages;
    fn merge(&mut self, other: Self) {
        *self = other;
    }
    fn resolve(self, _at: &str) -> Result<Outages, String> {
        Ok(self)
    }
    fn missing(_at: &str) -> Result<Outages, String> {
        Ok(Outages::default())
    }
}

impl<T: Layered> Layered for BTreeMap<String, T> {
    type Resolved = BTreeMap<String, T::Resolved>;
    fn merge(&mut self, other: Self) {
        for (k, v) in other {
            match self.get_mut(&k) {
                Some(mine) => mine.merge(v),
                None => {
                    self.insert(k, v);
                }
            }
        }
    }
    fn resolve(self, at: &str) -> Result<Self::Resolved, String> {
        self.into_iter()
            .map(|(k, v)| {
                let p = format!("{at}.{k}");
                v.resolve(&p).map(|r| (k, r))
            })
            .collect()
    }
}

fn merge_field<T: Layered>(mine: &mut Option<T>, other: Option<T>) {
    match (mine.as_mut(), other) {
        (Some(m), Some(o)) => m.merge(o),
        (None, Some(o)) => *mine = Some(o),
        _ => {}
    }
}

fn resolve_field<T: Layered>(v: Option<T>, at: &str, name: &str) -> Result<T::Resolved, String> {
    let p = if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    };
    match v {
        Some(v) => v.resolve(&p),
        None => T::missing(&p),
    }
}

macro_rules! layered {
    ($(#[$sm:meta])* $layer:ident => $resolved:ident {
        $( $(#[$fm:meta])* $f:ident : $t:ty ),* $(,)?
    }) => {
        #[doc = concat!("One file's (partial) view of [`", stringify!($resolved), "`].")]
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $layer {
            $( $(#[$fm])* #[serde(default)] pub $f: Option<$t>, )*
        }
        $(#[$sm])*
        #[derive(Debug, Clone, Serialize)]
        pub struct $resolved {
            $( $(#[$fm])* pub $f: <$t as Layered>::Resolved, )*
        }
        impl Layered for $layer {
            type Resolved = $resolved;
            fn merge(&mut self, other: Self) {
                $( merge_field(&mut self.$f, other.$f); )*
            }
            fn resolve(self, at: &str) -> Result<$resolved, String> {
                Ok($resolved { $( $f: resolve_field(self.$f, at, stringify!($f))?, )* })
            }
        }
    };
}

/// Who sends the Power Restoration Alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PraSource {
    /// The electricity meter (ECS80), through the non-priority message route.
    Esme,
    /// The Communications Hub, through the alert channel (change 2 in the North).
    Ch,
}

/// What PRA latency is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PraBase {
    /// From the restoration (default; makes the seed's figures consistent).
    Restoration,
    /// From the power cut.
    PowerCut,
}

/// Kind of a transport stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// FIFO queue with `servers` parallel servers each serving `rate` alerts per second.
    Queue,
    /// Token bucket (GCRA): `rate` tokens per second, `burst` tokens deep, FIFO backlog.
    Bucket,
}

layered!(
    /// The CSP region a profile models: a label for results and the byte it sends on the wire.
    RegionLayer => RegionSpec {
        /// Name used in results, file names and the changes file (`north`): lower-case letters,
        /// digits and '-'. Runs of the same region are compared with each other.
        name: String,
        /// Title shown in reports (`North`, `Central&South`).
        title: String,
        /// The csp-alert/1 region byte this region's alerts carry (`docs/protocol.md`).
        code: RegionCode,
    }
);

layered!(
    /// The outage scenario: who loses power, when, for how long.
    ScenarioLayer => Scenario {
        /// Premises (hubs) in the population.
        premises: NonZeroCount,
        /// Cells (North: base-station receive groups; C&S: cellular cells) the premises spread over:
        /// a count, or `{ premises_per_cell = N }` (the footprint grows with the outage).
        cells: Cells,
        /// Largest cell / smallest cell (premises per cell grow geometrically; 1 = equal cells).
        cell_size_ratio: AtLeastOne,
        /// Scenario time of the power cut.
        cut_at: Dur,
        /// Outage duration distribution.
        outage: OutageDist,
        /// Scenario time by which the run ends.
        horizon: Dur,
        /// What PRA latency is measured from.
        pra_base: PraBase,
    }
);

layered!(
    /// Hub behaviour shared by both regions.
    HubLayer => Hub {
        /// Power must be off this long before a POA exists (AD1 after 3 minutes).
        poa_threshold: Dur,
        /// Who sends the PRA.
        pra_source: PraSource,
        /// ESME restoration-alert generation delay after power returns (ESME source only).
        esme_delay: DurRange,
    }
);

layered!(
    /// One alert kind's use of the shared radio channel.
    ChannelAccessLayer => ChannelAccess {
        /// Start of the allocated window, after the alert's trigger (cut + threshold for POA, restoration for PRA).
        window_start: Dur,
        /// Width of the allocated window; the first attempt is uniform inside it.
        window: Dur,
        /// Retry backoff: next attempt uniform in [0, backoff] after the ack timeout.
        backoff: Dur,
        /// Attempts before the alert is given up as collided.
        max_attempts: NonZeroCount,
    }
);

layered!(
    /// Shared long-range radio access (CSP North): holdover, allocated windows, slotted contention.
    RadioLayer => Radio {
        /// Hub holdover (battery + super-capacitor) after the cut, uniform per hub.
        holdover: DurRange,
        /// Alert channels per cell (receive group).
        channels_per_cell: NonZeroCount,
        /// Slot length of the slotted contention channel.
        slot: Dur,
        /// Time a hub waits for an acknowledgement before it counts an attempt as failed.
        ack_timeout: Dur,
        /// POA channel access.
        poa: ChannelAccessLayer,
        /// PRA channel access (when the CH sends the PRA).
        pra: ChannelAccessLayer,
    }
);

layered!(
    /// Cellular access (CSP Central & South): the hub dies with the power, reboots, dithers and
    /// re-attaches to its cell.
    CellularLayer => Cellular {
        /// Hub reboot time after power returns.
        reboot: Dur,
        /// Random dither before the re-attach.
        dither: DurRange,
        /// Attach procedures a cell completes per second.
        attach_rate_per_cell: PositiveRate,
        /// Probability that one attach attempt fails.
        attach_failure: Probability,
        /// Attach attempts before the hub gives up (AttachFailure).
        attach_attempts: NonZeroCount,
        /// Wait before retrying a failed attach.
        attach_retry: Dur,
    }
);

impl Radio {
    /// How the alert of `kind` uses the channel.
    pub fn access(&self, kind: AlertKind) -> &ChannelAccess {
        match kind {
            AlertKind::Poa => &self.poa,
            AlertKind::Pra => &self.pra,
        }
    }
}

impl Stage {
    /// A stage from plain numbers, taken as given (a profile's stages are validated when read).
    pub fn new(kind: StageKind, rate: f64, servers: u32, burst: u32, capacity: u32) -> Stage {
        Stage {
            kind,
            rate: PositiveRate(rate),
            servers: NonZeroCount(servers),
            burst: NonZeroCount(burst),
            capacity: NonZeroCount(capacity),
            priority: None,
            summarise: None,
        }
    }
}

/// One file's (partial) view of [`Access`]: a complete profile sets exactly one mechanism.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLayer {
    /// `[access.radio]`.
    #[serde(default)]
    pub radio: Option<RadioLayer>,
    /// `[access.cellular]`.
    #[serde(default)]
    pub cellular: Option<CellularLayer>,
}

/// How hubs reach the CSP after the power cut: the access mechanism a profile chooses.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Shared radio channels (holdover, windows, slotted contention, retries).
    Radio(Radio),
    /// Cellular re-attach (reboot, dither, attach capacity and failures).
    Cellular(Cellular),
}

impl Layered for AccessLayer {
    type Resolved = Access;
    fn merge(&mut self, other: Self) {
        // A layer that sets one mechanism replaces an inherited other one, so a profile can extend
        // another and switch mechanism; the new mechanism must then be given in full.
        match (&other.radio, &other.cellular) {
            (Some(_), None) => self.cellular = None,
            (None, Some(_)) => self.radio = None,
            _ => {}
        }
        merge_field(&mut self.radio, other.radio);
        merge_field(&mut self.cellular, other.cellular);
    }
    fn resolve(self, at: &str) -> Result<Access, String> {
        match (self.radio, self.cellular) {
            (Some(r), None) => r.resolve(&format!("{at}.radio")).map(Access::Radio),
            (None, Some(c)) => c.resolve(&format!("{at}.cellular")).map(Access::Cellular),
            (Some(_), Some(_)) => Err(format!(
                "field `{at}`: one access mechanism per profile: [{at}.radio] or [{at}.cellular], not both"
            )),
            (None, None) => Self::missing(at),
        }
    }
    fn missing(at: &str) -> Result<Access, String> {
        Err(format!(
            "missing field `{at}`: choose an access mechanism, [{at}.radio] or [{at}.cellular]"
        ))
    }
}

layered!(
    /// One transport stage (head-end, throttle, DSP lanes).
    StageLayer => Stage {
        /// `queue` or `bucket`.
        kind: StageKind,
        /// Queue: alerts per second per server; bucket: tokens per second.
        rate: PositiveRate,
        /// Queue: parallel servers (lanes); bucket: must be 1.
        servers: NonZeroCount,
        /// Bucket: depth in tokens; queue: must be 1.
        burst: NonZeroCount,
        /// Alerts that may wait; one more overflows (QueueOverflow).
        capacity: NonZeroCount,
        /// HYPOTHETICAL location-aware priority (optional).
        #[serde(skip_serializing_if = "Option::is_none")]
        priority: Option<Priority>,
        /// HYPOTHETICAL summarised alerts (optional).
        #[serde(skip_serializing_if = "Option::is_none")]
        summarise: Option<Summarise>,
    }
);

layered!(
    /// Which stages each alert path crosses, in order.
    RoutesLayer => Routes {
        /// POA from the hub.
        poa: Vec<String>,
        /// PRA from the CH.
        pra_ch: Vec<String>,
        /// PRA from the ESME.
        pra_esme: Vec<String>,
    }
);

layered!(
    /// The full model parameters of a profile.
    ParamsLayer => Params {
        /// Profile name.
        name: String,
        /// CSP region.
        region: RegionLayer,
        /// The scenario.
        scenario: ScenarioLayer,
        /// Hub behaviour.
        hub: HubLayer,
        /// The access mechanism.
        access: AccessLayer,
        /// Transport stages by name.
        stages: BTreeMap<String, StageLayer>,
        /// Alert paths.
        routes: RoutesLayer,
        /// Further outages of a storm (`[[outage]]`), after the scenario's own.
        #[serde(skip_serializing_if = "Outages::is_empty")]
        outage: Outages,
    }
);

/// A profile file: model parameters plus the layering keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    /// Base profile this one overrides (relative to this file).
    #[serde(default)]
    extends: Option<String>,
    /// The shared file defining the technical changes (relative to this file).
    #[serde(default)]
    change_file: Option<String>,
    /// Technical changes to enable on top of the base's.
    #[serde(default)]
    changes: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    region: Option<RegionLayer>,
    #[serde(default)]
    scenario: Option<ScenarioLayer>,
    #[serde(default)]
    hub: Option<HubLayer>,
    #[serde(default)]
    access: Option<AccessLayer>,
    #[serde(default)]
    stages: Option<BTreeMap<String, StageLayer>>,
    #[serde(default)]
    routes: Option<RoutesLayer>,
    #[serde(default)]
    outage: Option<Outages>,
    /// CI thresholds (checked by the harness's `verdict`, not by the model): accepted here so a
    /// profile can carry its own, validated when the harness reads them.
    #[serde(default)]
    #[allow(dead_code)]
    thresholds: Option<toml::Table>,
}

impl FileLayer {
    fn params(&mut self) -> ParamsLayer {
        ParamsLayer {
            name: self.name.take(),
            region: self.region.take(),
            scenario: self.scenario.take(),
            hub: self.hub.take(),
            access: self.access.take(),
            stages: self.stages.take(),
            routes: self.routes.take(),
            outage: self.outage.take(),
        }
    }
}

/// One technical change: a title and a patch per region, keyed by region name
/// (`[change.3.north.access.radio]`); a region without a patch is left alone.
#[derive(Debug, Clone)]
struct ChangeDef {
    title: String,
    patches: BTreeMap<String, ParamsLayer>,
}

impl<'de> Deserialize<'de> for ChangeDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChangeVisitor;
        impl<'de> Visitor<'de> for ChangeVisitor {
            type Value = ChangeDef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a `title` and one patch table per region name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChangeDef, A::Error> {
                let mut title = None;
                let mut patches = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "title" {
                        title = Some(map.next_value()?);
                    } else {
                        Region::named(&key).map_err(de::Error::custom)?;
                        patches.insert(key, map.next_value()?);
                    }
                }
                let title = title.ok_or_else(|| de::Error::missing_field("title"))?;
                Ok(ChangeDef { title, patches })
            }
        }
        d.deserialize_map(ChangeVisitor)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeFile {
    change: BTreeMap<String, ChangeDef>,
}

/// A resolved load profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) params: Params,
    pub(crate) region: Region,
    pub(crate) changes: Vec<String>,
    pub(crate) change_titles: Vec<(String, String)>,
    /// The file it was read from, as messages name it.
    pub(crate) source: String,
    /// Its path inside the source it was read from (what [`crate::tweak::tagged_in`] reads again).
    pub(crate) path: PathBuf,
}

/// Where profile files are read from. A profile's `extends` and `change_file` name other files
/// relative to it, and they are read from the same source: a profile built into a binary extends
/// built-in files, a profile on disk files on disk.
pub trait ProfileSource {
    /// The text of the file at `path` (already joined to the file that names it), or why it
    /// cannot be read.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// How messages name the file at `path`: `profiles/north/current.toml`,
    /// `<built-in>/north/current.toml`.
    fn name(&self, path: &Path) -> String;
}

/// The file system: paths as given, relative to the working directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Files;

impl ProfileSource for Files {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
    }
    fn name(&self, path: &Path) -> String {
        path.display().to_string()
    }
}

fn toml_err(file: &str, text: &str, e: &toml::de::Error) -> ProfileError {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return ProfileError(format!("{file}: {msg}"));
    };
    let (line, _) = line_col(text, span.start);
    match key_on_line(text, line) {
        Some(field) => ProfileError(format!("{file}:{line}: field `{field}`: {msg}")),
        None => ProfileError(format!("{file}:{line}: {msg}")),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    src: &dyn ProfileSource,
    path: &Path,
) -> Result<T, ProfileError> {
    let file = src.name(path);
    let text = src
        .read(path)
        .map_err(|e| ProfileError(format!("{file}: {e}")))?;
    toml::from_str(&text).map_err(|e| toml_err(&file, &text, &e))
}

fn rel(base: &Path, p: &str) -> PathBuf {
    base.parent().unwrap_or(Path::new(".")).join(p)
}

struct Chain {
    params: ParamsLayer,
    changes: Vec<String>,
    change_file: Option<PathBuf>,
}

fn load_chain(src: &dyn ProfileSource, path: &Path, depth: usize) -> Result<Chain, ProfileError> {
    if depth > 8 {
        return Err(ProfileError(format!(
            "{}: `extends` nests more than 8 deep (a cycle?)",
            src.name(path)
        )));
    }
    let mut file: FileLayer = parse(src, path)?;
    let mut chain = match &file.extends {
        Some(base) => load_chain(src, &rel(path, base), depth + 1)
            .map_err(|e| ProfileError(format!("{e}\n  (extended by {})", src.name(path))))?,
        None => Chain {
            params: ParamsLayer::default(),
            changes: Vec::new(),
            change_file: None,
        },
    };
    chain.params.merge(file.params());
    if let Some(cf) = &file.change_file {
        chain.change_file = Some(rel(path, cf));
    }
    for c in file.changes.unwrap_or_default() {
        if !chain.changes.contains(&c) {
            chain.changes.push(c);
        }
    }
    Ok(chain)
}

impl Profile {
    /// Reads and resolves a profile file (extends, change overlays), validating every field.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        Self::load_with_changes(path, &[])
    }

    /// Like [`Profile::load`], enabling `extra` technical changes on top of the file's own
    /// (any subset of "1".."8" can be expressed this way, e.g. for `--changes 1,3`).
    pub fn load_with_changes(path: &Path, extra: &[String]) -> Result<Profile, ProfileError> {
        Self::load_from(&Files, path, extra)
    }

    /// Like [`Profile::load_with_changes`], reading the profile and every file it names from
    /// `src` (e.g. profiles built into the binary).
    pub fn load_from(
        src: &dyn ProfileSource,
        path: &Path,
        extra: &[String],
    ) -> Result<Profile, ProfileError> {
        let file = src.name(path);
        let mut chain = load_chain(src, path, 0)?;
        for c in extra {
            if !chain.changes.contains(c) {
                chain.changes.push(c.clone());
            }
        }
        let region_name = chain.params.region.as_ref().and_then(|r| r.name.clone());
        let mut titles = Vec::new();
        if !chain.changes.is_empty() {
            let cf = chain.change_file.clone().ok_or_else(|| {
                ProfileError(format!(
                    "{file}: field `changes`: changes are enabled but no `change_file` names their definitions"
                ))
            })?;
            let defs: ChangeFile = parse(src, &cf)?;
            let mut sorted = chain.changes.clone();
            sorted.sort_by_key(|c| (c.parse::<u32>().unwrap_or(u32::MAX), c.clone()));
            for c in &sorted {
                let def = defs.change.get(c).ok_or_else(|| {
                    ProfileError(format!(
                        "{file}: field `changes`: unknown technical change `{c}` (defined: {})",
                        defs.change.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                titles.push((c.clone(), def.title.clone()));
                let patch = region_name.as_ref().and_then(|r| def.patches.get(r));
                if let Some(p) = patch {
                    chain.params.merge(p.clone());
                }
            }
            chain.changes = sorted;
        }
        let in_file = |e: String| ProfileError(format!("{file}: {e}"));
        let params = chain.params.resolve("").map_err(in_file)?;
        let region = Region::new(&params.region.name, &params.region.title)
            .map_err(|e| in_file(format!("field `region`: {e}")))?;
        let p = Profile {
            params,
            region,
            changes: chain.changes,
            change_titles: titles,
            source: file.clone(),
            path: path.to_path_buf(),
        };
        p.check().map_err(in_file)?;
        Ok(p)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let p = &self.params;
        p.scenario
            .outage
            .check()
            .map_err(|e| format!("field `scenario.outage`: {e}"))?;
        if p.scenario.horizon <= p.scenario.cut_at {
            return Err("field `scenario.horizon`: must be after `scenario.cut_at`".into());
        }
        let pop = population_of(p)?;
        if let Some(o) = pop
            .outages
            .iter()
            .find(|o| o.cut_us >= p.scenario.horizon.us())
        {
            return Err(format!(
                "field `scenario.horizon`: must be after the cut of outage `{}`",
                o.name
            ));
        }
        if let Access::Radio(r) = &p.access {
            if r.slot.0 == 0 {
                return Err("field `access.radio.slot`: must be positive".into());
            }
            if r.ack_timeout.0 == 0 {
                return Err("field `access.radio.ack_timeout`: must be positive".into());
            }
        }
        for (name, s) in &p.stages {
            if s.kind == StageKind::Bucket && s.servers.0 != 1 {
                return Err(format!(
                    "field `stages.{name}.servers`: a bucket has exactly 1 server"
                ));
            }
            if s.kind == StageKind::Queue && s.burst.0 != 1 {
                return Err(format!(
                    "field `stages.{name}.burst`: a queue has no burst (write 1)"
                ));
            }
            if s.summarise.is_some_and(|m| m.window.0 == 0) {
                return Err(format!(
                    "field `stages.{name}.summarise.window`: must be positive"
                ));
            }
        }
        for (route, stages) in [
            ("poa", &p.routes.poa),
            ("pra_ch", &p.routes.pra_ch),
            ("pra_esme", &p.routes.pra_esme),
        ] {
            for s in stages {
                if !p.stages.contains_key(s) {
                    return Err(format!(
                        "field `routes.{route}`: no stage named `{s}` (defined: {})",
                        p.stages.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// The file it was read from, as messages name it (`profiles/north/current.toml`,
    /// `<built-in>/north/current.toml`).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// Profile name (e.g. `north/current`).
    pub fn name(&self) -> &str {
        &self.params.name
    }
    /// CSP region (a label: name and title from the profile).
    pub fn region(&self) -> Region {
        self.region
    }
    /// The csp-alert/1 region byte this profile's alerts carry.
    pub fn region_code(&self) -> u8 {
        self.params.region.code.0
    }
    /// Number of premises (hubs) in the population: every outage's.
    pub fn premises(&self) -> u32 {
        self.population().premises
    }
    /// Every outage on premises and cells (checked when the profile was read).
    pub fn population(&self) -> Population {
        population(&self.params)
    }
    /// Does a stage fold alerts into summary alerts (the hypothetical `summarise` option)?
    pub fn summarises(&self) -> bool {
        self.params.stages.values().any(|s| s.summarise.is_some())
    }
    /// Enabled technical changes, in numeric order.
    pub fn changes(&self) -> Vec<String> {
        self.changes.clone()
    }
    /// `current`, `option-a` (changes 1-5), `option-b` (1-8), or `custom: 1,3,...`; named
    /// (non-numeric, hypothetical) changes are appended to the label of the numbered ones:
    /// `option-b+location-aware`.
    pub fn option_label(&self) -> String {
        let (numbered, named): (Vec<&String>, Vec<&String>) =
            self.changes.iter().partition(|c| c.parse::<u32>().is_ok());
        let base = Self::numbered_label(&numbered);
        if named.is_empty() {
            return base;
        }
        let names: Vec<&str> = named.iter().map(|c| c.as_str()).collect();
        match base.strip_prefix("custom: ") {
            Some(list) => format!("custom: {list},{}", names.join(",")),
            None => format!("{base}+{}", names.join("+")),
        }
    }
    fn numbered_label(changes: &[&String]) -> String {
        let set: BTreeSet<&str> = changes.iter().map(|c| c.as_str()).collect();
        let a: BTreeSet<&str> = ["1", "2", "3", "4", "5"].into_iter().collect();
        let b: BTreeSet<&str> = ["1", "2", "3", "4", "5", "6", "7", "8"]
            .into_iter()
            .collect();
        if set.is_empty() {
            "current".into()
        } else if set == a {
            "option-a".into()
        } else if set == b {
            "option-b".into()
        } else {
            let list: Vec<&str> = changes.iter().map(|c| c.as_str()).collect();
            format!("custom: {}", list.join(","))
        }
    }
    /// The resolved profile as TOML (every parameter, with the enabled changes applied).
    pub fn to_resolved_toml(&self) -> String {
        let mut head = format!(
            "# resolved from {}\n# changes: {}\n",
            self.source,
            if self.change_titles.is_empty() {
                "none (current)".to_string()
            } else {
                self.change_titles
                    .iter()
                    .map(|(n, t)| format!("{n} ({t})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
        head.push_str(&format!("changes = {:?}\n", self.changes));
        match toml::to_string(&self.params) {
            Ok(s) => head + &s,
            Err(e) => head + &format!("# cannot serialise: {e}\n"),
        }
    }
    /// Scenario time by which the run ends, ms.
    pub fn horizon_ms(&self) -> u64 {
        self.params.scenario.horizon.ms()
    }
    /// Every resolved parameter.
    pub fn params(&self) -> &Params {
        &self.params
    }
    /// The same profile with another size of its main outage; the number of cells follows so that
    /// premises per cell (and hence per shared channel) stay as in the profile (a density does so
    /// by itself; an explicit count of cells is scaled).
    pub fn with_premises(&self, premises: u32) -> Profile {
        let mut p = self.clone();
        let s = &mut p.params.scenario;
        if let Cells::Count(cells) = s.cells {
            let per_cell = (s.premises.0 as f64 / cells.0 as f64).max(1.0);
            s.cells = Cells::Count(NonZeroCount(
                ((premises as f64 / per_cell).round() as u32).clamp(1, premises.max(1)),
            ));
        }
        s.premises = NonZeroCount(premises.max(1));
        p
    }
}

/// The outages of `p` laid out, or why they cannot be.
pub fn population_of(p: &Params) -> Result<Population, String> {
    let s = &p.scenario;
    Population::new(
        MainOutage {
            premises: s.premises.0,
            cells: &s.cells,
            cut_at: s.cut_at,
            duration: s.outage,
        },
        &p.outage.0,
        s.cell_size_ratio.0,
    )
}

/// The outages of `p` laid out. A profile's outages are checked when it is read; parameters built
/// by hand with a broken footprint or `[[outage]]` list get their main outage alone, in one cell.
pub fn population(p: &Params) -> Population {
    population_of(p).unwrap_or_else(|_| {
        let s = &p.scenario;
        Population::single(s.premises.0, s.cut_at, s.outage)
    })
}
