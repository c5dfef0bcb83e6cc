//! Regions are data: a new region (or a region with another access mechanism) is a new profile,
//! and the changes file patches regions by name.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
mod support;

use csp_model::profile::Access;
use csp_model::{Event, Profile, Simulation};
use std::path::{Path, PathBuf};
use support::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("csp-model-regions-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(d: &Path, file: &str, text: &str) -> PathBuf {
    let p = d.join(file);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_third_region_is_a_profile_with_its_own_name_title_code_and_changes() {
    let d = dir("east");
    write(
        &d,
        "changes.toml",
        "[change.1]\ntitle = \"More channels in the East\"\n\
         [change.1.east.access.radio]\nchannels_per_cell = 7\n\
         [change.1.north.access.radio]\nchannels_per_cell = 2\n",
    );
    let base = profile_path("north/current.toml");
    let east = write(
        &d,
        "east.toml",
        &format!(
            "extends = {:?}\nname = \"east/current\"\nchange_file = \"changes.toml\"\n\
             region = {{ name = \"east\", title = \"East & Wales\", code = 3 }}\n",
            base.display().to_string()
        ),
    );
    let p = Profile::load(&east).unwrap();
    assert_eq!(p.region().as_str(), "east");
    assert_eq!(p.region().title(), "East & Wales");
    assert_eq!(p.region_code(), 3);
    let Access::Radio(r) = &p.params().access else {
        panic!("extends North: radio")
    };
    assert_eq!(r.channels_per_cell.0, 1);
    // The change file's patch for `east` applies to this region, the one for `north` does not.
    let with_1 = Profile::load_with_changes(&east, &["1".into()]).unwrap();
    let Access::Radio(r) = &with_1.params().access else {
        panic!()
    };
    assert_eq!(r.channels_per_cell.0, 7);
    // Its alerts carry its label and its code.
    let mut sim = Simulation::new(&p.with_premises(200), 1);
    let mut exits = 0;
    while let Some(t) = sim.poll_timeout() {
        sim.handle_timeout(t);
        while let Some(e) = sim.poll_event() {
            if let Event::Exit(o) = e {
                assert_eq!((o.region, o.region_code), (p.region(), 3));
                exits += 1;
            }
        }
    }
    assert!(exits > 0);
}

#[test]
fn a_region_chooses_its_access_mechanism_and_may_switch_it_in_full() {
    let d = dir("switch");
    let cs = profile("central-south/current.toml");
    let Access::Cellular(_) = &cs.params().access else {
        panic!()
    };
    // North's radio replaced by a complete cellular section: a cellular region in the North.
    let base = profile_path("north/current.toml");
    let cellular = "[access.cellular]\nreboot = \"60s\"\ndither = { min = \"0s\", max = \"60s\" }\n\
                    attach_rate_per_cell = 25.0\nattach_failure = 0.01\nattach_attempts = 2\n\
                    attach_retry = \"10s\"\n";
    let switched = write(
        &d,
        "switched.toml",
        &format!("extends = {:?}\n{cellular}", base.display().to_string()),
    );
    let p = Profile::load(&switched).unwrap();
    assert!(matches!(p.params().access, Access::Cellular(_)));
    assert_eq!(p.region().as_str(), "north");
    // Both in one file is refused by name.
    let both = write(
        &d,
        "both.toml",
        &format!(
            "extends = {:?}\n{cellular}[access.radio]\nslot = \"100ms\"\n",
            base.display().to_string()
        ),
    );
    let e = Profile::load(&both).unwrap_err().to_string();
    assert!(
        e.contains("both.toml") && e.contains("one access mechanism"),
        "{e}"
    );
    // A partial switch (a cellular section missing fields) names the missing field.
    let partial = write(
        &d,
        "partial.toml",
        &format!(
            "extends = {:?}\n[access.cellular]\nreboot = \"60s\"\n",
            base.display().to_string()
        ),
    );
    let e = Profile::load(&partial).unwrap_err().to_string();
    assert!(e.contains("access.cellular.dither"), "{e}");
}

#[test]
fn a_bad_region_is_refused_with_its_field() {
    let d = dir("bad");
    let base = profile_path("north/current.toml");
    for (name, region, needle) in [
        ("upper", "{ name = \"North\" }", "region"),
        ("code0", "{ code = 0 }", "code"),
        ("code256", "{ code = 256 }", "code"),
        ("title", "{ title = \" \" }", "title"),
    ] {
        let f = write(
            &d,
            &format!("{name}.toml"),
            &format!(
                "extends = {:?}\nregion = {region}\n",
                base.display().to_string()
            ),
        );
        let e = Profile::load(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{name}.toml")) && e.contains(needle),
            "{name}: {e}"
        );
    }
    // A region name in the changes file that no region could have is refused too.
    write(
        &d,
        "changes.toml",
        "[change.1]\ntitle = \"x\"\n[change.1.North.hub]\npoa_threshold = \"1m\"\n",
    );
    let f = write(
        &d,
        "changes-bad.toml",
        &format!(
            "extends = {:?}\nchange_file = \"changes.toml\"\nchanges = [\"1\"]\n",
            base.display().to_string()
        ),
    );
    let e = Profile::load(&f).unwrap_err().to_string();
    assert!(
        e.contains("changes.toml:1") && e.contains("change.1") && e.contains("`North`"),
        "{e}"
    );
}
