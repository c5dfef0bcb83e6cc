//! Shared test helpers: the seed profiles, and small hand-made parameter sets built from them so a
//! test states only the mechanism it pins down.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; setup may panic

use csp_model::Profile;
use csp_model::profile::{Access, Params, Stage, StageKind};
use csp_model::units::Dur;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub fn profile_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(rel)
}

pub fn profile(rel: &str) -> Profile {
    Profile::load(&profile_path(rel)).unwrap()
}

pub fn north() -> Params {
    profile("north/current.toml").params().clone()
}

pub fn central_south() -> Params {
    profile("central-south/current.toml").params().clone()
}

pub fn stage(kind: StageKind, rate: f64, servers: u32, burst: u32, capacity: u32) -> Stage {
    Stage::new(kind, rate, servers, burst, capacity)
}

/// `p` with these stages, and every route crossing all of them in the order given.
pub fn with_route(mut p: Params, stages: &[(&str, Stage)]) -> Params {
    p.stages = stages
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect::<BTreeMap<_, _>>();
    let names: Vec<String> = stages.iter().map(|(n, _)| n.to_string()).collect();
    p.routes.poa = names.clone();
    p.routes.pra_ch = names.clone();
    p.routes.pra_esme = names;
    p
}

pub fn with_horizon(mut p: Params, horizon: &str) -> Params {
    p.scenario.horizon = Dur::parse(horizon).unwrap();
    p
}

/// Microseconds in a scenario duration written like a profile's (`"1m30s"`).
pub fn us(d: &str) -> u64 {
    Dur::parse(d).unwrap().us()
}

pub fn radio(p: &mut Params) -> &mut csp_model::profile::Radio {
    match &mut p.access {
        Access::Radio(r) => r,
        Access::Cellular(_) => panic!("not a radio profile"),
    }
}

pub fn cellular(p: &mut Params) -> &mut csp_model::profile::Cellular {
    match &mut p.access {
        Access::Cellular(c) => c,
        Access::Radio(_) => panic!("not a cellular profile"),
    }
}
