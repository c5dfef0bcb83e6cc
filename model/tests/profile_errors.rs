//! Bad profiles are refused with the file, the line and the field.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures
use csp_model::Profile;
use std::path::{Path, PathBuf};

fn profiles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

/// Writes `text` as a profile extending North Current, loads it, returns the error message.
fn error_of(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("vh-profile-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    let base = profiles().join("north/current.toml");
    let body = format!("extends = {:?}\n{text}", base.display().to_string());
    std::fs::write(&path, body).unwrap();
    match Profile::load(&path) {
        Ok(_) => panic!("{name}: accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(msg: &str, file: &str, line: usize, field: &str) {
    assert!(
        msg.contains(&format!("{file}.toml:{line}:")),
        "no file:line in: {msg}"
    );
    assert!(
        msg.contains(&format!("`{field}`")),
        "no field `{field}` in: {msg}"
    );
}

#[test]
fn every_kind_of_mistake_names_file_line_and_field() {
    let m = error_of("syntax", "[scenario]\npremises = \n");
    assert_names(&m, "syntax", 3, "premises");
    let m = error_of("wrong_type", "[scenario]\npremises = \"many\"\n");
    assert_names(&m, "wrong_type", 3, "premises");
    let m = error_of("unknown_key", "[scenario]\npremise = 3\n");
    assert_names(&m, "unknown_key", 3, "premise");
    assert!(m.contains("unknown field"), "{m}");
    let m = error_of("negative_rate", "[stages.dsp]\nrate = -5.0\n");
    assert_names(&m, "negative_rate", 3, "rate");
    let m = error_of("zero_capacity", "[stages.dsp]\ncapacity = 0\n");
    assert_names(&m, "zero_capacity", 3, "capacity");
    let m = error_of("negative_duration", "[access.radio]\nslot = \"-100ms\"\n");
    assert_names(&m, "negative_duration", 3, "slot");
    let m = error_of(
        "impossible_range",
        "[access.radio]\nholdover = { min = \"12m\", max = \"10m\" }\n",
    );
    assert_names(&m, "impossible_range", 3, "holdover");
    let m = error_of("probability", "[hub]\npoa_threshold = \"3x\"\n");
    assert_names(&m, "probability", 3, "poa_threshold");
    let m = error_of("unknown_change", "changes = [\"9\"]\n");
    assert!(
        m.contains("unknown_change.toml") && m.contains("`changes`"),
        "{m}"
    );
    let m = error_of("missing_stage", "[routes]\npoa = [\"nowhere\"]\n");
    assert!(m.contains("routes.poa") && m.contains("nowhere"), "{m}");
}

#[test]
fn errors_in_an_extended_file_name_that_file() {
    let dir = std::env::temp_dir().join(format!("vh-profile-base-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.toml");
    std::fs::write(
        &base,
        "region = { name = \"north\", title = \"North\", code = 1 }\n\n[scenario]\ncells = 0\n",
    )
    .unwrap();
    let child = dir.join("child.toml");
    std::fs::write(&child, "extends = \"base.toml\"\n").unwrap();
    let m = Profile::load(&child).unwrap_err().to_string();
    assert!(m.contains("base.toml:4:") && m.contains("`cells`"), "{m}");
    assert!(m.contains("child.toml"), "{m}");
    assert!(Profile::load(Path::new("/nonexistent/profile.toml")).is_err());
}

#[test]
fn the_shipped_profiles_load_and_options_differ_only_by_changes() {
    for region in ["north", "central-south"] {
        let cur = Profile::load(&profiles().join(region).join("current.toml")).unwrap();
        let a = Profile::load(&profiles().join(region).join("option-a.toml")).unwrap();
        let b = Profile::load(&profiles().join(region).join("option-b.toml")).unwrap();
        assert_eq!(cur.option_label(), "current");
        assert_eq!(a.option_label(), "option-a");
        assert_eq!(b.option_label(), "option-b");
        assert_eq!(a.changes(), ["1", "2", "3", "4", "5"]);
        // Scenario identical across options of a region.
        let scen = |p: &Profile| format!("{:?}", p.params().scenario);
        assert_eq!(scen(&cur), scen(&a));
        assert_eq!(scen(&cur), scen(&b));
        // Option A resolved == Current with changes 1-5 applied on the fly.
        let five: Vec<String> = (1..=5).map(|c| c.to_string()).collect();
        let cur_a =
            Profile::load_with_changes(&profiles().join(region).join("current.toml"), &five)
                .unwrap();
        assert_eq!(
            format!("{:?}", cur_a.params().access),
            format!("{:?}", a.params().access)
        );
        assert_eq!(
            format!("{:?}", cur_a.params().stages),
            format!("{:?}", a.params().stages)
        );
        let toml = b.to_resolved_toml();
        assert!(
            toml.contains("[scenario]") && toml.contains("changes = "),
            "{toml}"
        );
    }
    let mixed = Profile::load(&profiles().join("test/mixed-short.toml")).unwrap();
    assert_eq!(mixed.premises(), 2000);
    let custom = Profile::load_with_changes(
        &profiles().join("north/current.toml"),
        &["3".into(), "1".into()],
    )
    .unwrap();
    assert_eq!(custom.option_label(), "custom: 1,3");
}
