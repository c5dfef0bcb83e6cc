//! Profiles (and thresholds files) by name or path: a file on disk, or one of the repository's
//! `profiles/` tree built into the binary (`build.rs` embeds every file of it), so
//! `--profile north/current` works from any folder and in a container with no profiles beside it.
//!
//! A path that exists on disk always wins, exactly as before built-in profiles existed. Otherwise
//! the name is looked up in the built-in tree: `north/current`, `north/current.toml` and
//! `profiles/north/current.toml` all name the same built-in file. A built-in profile's `extends`
//! and `change_file` are read from the built-in tree too, and every message names such a file
//! `<built-in>/north/current.toml`. This module reads files; it never interprets a profile.

use anyhow::anyhow;
use std::path::{Component, Path, PathBuf};
use virtual_hubs::{Profile, ProfileError, ProfileSource};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));
}

/// How messages and `run.json` name a built-in file: `<built-in>/north/current.toml`.
pub const BUILT_IN: &str = "<built-in>";

/// Every built-in file: (path inside `profiles/`, contents), sorted by path.
pub fn built_in_files() -> &'static [(&'static str, &'static str)] {
    generated::FILES
}

/// The built-in tree as a [`ProfileSource`]: paths are inside `profiles/`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltIn;

impl BuiltIn {
    /// The contents of the built-in file at `path` (`..` and `.` resolved), if there is one.
    pub fn get(path: &Path) -> Option<(&'static str, &'static str)> {
        let key = normalize(path)?;
        built_in_files()
            .iter()
            .find(|(name, _)| *name == key)
            .copied()
    }
}

impl ProfileSource for BuiltIn {
    fn read(&self, path: &Path) -> Result<String, String> {
        BuiltIn::get(path)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| {
                "no such built-in file (`csp-harness profile list` shows what is built in)".into()
            })
    }

    fn name(&self, path: &Path) -> String {
        match normalize(path) {
            Some(key) => format!("{BUILT_IN}/{key}"),
            None => format!("{BUILT_IN}/{}", path.display()),
        }
    }
}

/// A relative path inside the tree with `.` and `..` resolved, '/'-separated; `None` for an
/// absolute path or one that climbs out of the tree.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A profile or thresholds file named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFile {
    /// A file on disk, as given.
    Disk(PathBuf),
    /// A built-in file, by its path inside `profiles/`.
    BuiltIn(&'static str),
}

impl ProfileFile {
    /// `arg` on disk if it is a file there; else the built-in file it names (`north/current`,
    /// `north/current.toml` or `profiles/north/current.toml`); else an error that says both were
    /// tried.
    pub fn find(arg: &Path) -> anyhow::Result<ProfileFile> {
        Self::find_as(arg, "profile")
    }

    /// [`ProfileFile::find`] for a file that is `what` (a "profile", a "thresholds file"), as its
    /// errors call it.
    pub fn find_as(arg: &Path, what: &str) -> anyhow::Result<ProfileFile> {
        if arg.is_file() {
            return Ok(ProfileFile::Disk(arg.to_path_buf()));
        }
        if arg.is_dir() {
            return Err(anyhow!("{} is a folder, not a {what}", arg.display()));
        }
        let inside = arg.strip_prefix("profiles").unwrap_or(arg);
        let mut candidates = vec![inside.to_path_buf()];
        if inside.extension().is_none() {
            candidates.push(inside.with_extension("toml"));
        }
        if let Some((key, _)) = candidates.iter().find_map(|c| BuiltIn::get(c)) {
            return Ok(ProfileFile::BuiltIn(key));
        }
        Err(anyhow!(
            "{}: no such file, and no built-in {what} of that name (`csp-harness profile list` \
             shows the {} built-in files)",
            arg.display(),
            built_in_files().len()
        ))
    }

    /// How messages and `run.json` name it.
    pub fn name(&self) -> String {
        match self {
            ProfileFile::Disk(p) => p.display().to_string(),
            ProfileFile::BuiltIn(key) => format!("{BUILT_IN}/{key}"),
        }
    }

    /// Reads and resolves it as a profile with `changes` enabled on top of its own.
    pub fn load(&self, changes: &[String]) -> Result<Profile, ProfileError> {
        match self {
            ProfileFile::Disk(p) => Profile::load_with_changes(p, changes),
            ProfileFile::BuiltIn(key) => Profile::load_from(&BuiltIn, Path::new(key), changes),
        }
    }

    /// Its text.
    pub fn text(&self) -> anyhow::Result<String> {
        match self {
            ProfileFile::Disk(p) => {
                std::fs::read_to_string(p).map_err(|e| anyhow!("{}: cannot read: {e}", p.display()))
            }
            ProfileFile::BuiltIn(key) => BuiltIn
                .read(Path::new(key))
                .map_err(|e| anyhow!("{}: {e}", self.name())),
        }
    }
}

/// Finds and loads a profile named on the command line (see [`ProfileFile::find`]).
pub fn load(arg: &Path, changes: &[String]) -> anyhow::Result<Profile> {
    Ok(ProfileFile::find(arg)?.load(changes)?)
}

/// `csp-harness profile list`: every built-in profile with what it runs, then the other built-in
/// files (change definitions, thresholds). A file that does not load says why, on its line.
pub fn list() -> String {
    let mut profiles = Vec::new();
    let mut others = Vec::new();
    for (path, text) in built_in_files() {
        // A profile names itself; the changes and thresholds files do not.
        let is_profile = path.ends_with(".toml")
            && toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("name"));
        if !is_profile {
            others.push(format!("  {path}\n"));
            continue;
        }
        let arg = path.trim_end_matches(".toml");
        let line = match Profile::load_from(&BuiltIn, Path::new(path), &[]) {
            Ok(p) => format!(
                "  {arg:<28} {:<14} {:<10} {:>10} premises\n",
                p.region().title(),
                p.option_label(),
                p.premises()
            ),
            Err(e) => format!("  {arg:<28} does not load: {e}\n"),
        };
        profiles.push(line);
    }
    format!(
        "Built-in profiles (--profile NAME; a file of that path on disk wins):\n{}\
         Other built-in files (--thresholds NAME works the same way):\n{}",
        profiles.concat(),
        others.concat()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_tree_is_built_in_and_every_profile_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
        let mut on_disk = Vec::new();
        fn walk(dir: &Path, inside: &str, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let rel = if inside.is_empty() {
                    name.clone()
                } else {
                    format!("{inside}/{name}")
                };
                if e.path().is_dir() {
                    walk(&e.path(), &rel, out);
                } else if !name.starts_with('.') {
                    out.push(rel);
                }
            }
        }
        walk(&root, "", &mut on_disk);
        on_disk.sort();
        let built: Vec<&str> = built_in_files().iter().map(|(p, _)| *p).collect();
        assert_eq!(built, on_disk, "every file of profiles/ is built in");
        let listed = list();
        assert!(!listed.contains("does not load"), "{listed}");
        for seed in crate::compare::SEED_PROFILES {
            assert!(listed.contains(seed.trim_end_matches(".toml")), "{listed}");
        }
    }

    #[test]
    fn names_find_built_in_files_and_disk_wins() {
        let want = ProfileFile::BuiltIn("north/current.toml");
        for name in [
            "north/current",
            "north/current.toml",
            "profiles/north/current.toml",
            "./north/../north/current",
        ] {
            // The test runs in harness/, where none of these exists on disk.
            assert_eq!(ProfileFile::find(Path::new(name)).unwrap(), want, "{name}");
        }
        let p = load(Path::new("test/mixed-short"), &[]).unwrap();
        assert_eq!(p.name(), "test/mixed-short");
        assert_eq!(p.source(), "<built-in>/test/mixed-short.toml");
        let b = load(Path::new("north/option-b"), &["3".into()]).unwrap();
        assert_eq!(
            b.changes().len(),
            8,
            "extends and change_file resolve inside the tree"
        );
        let e = ProfileFile::find(Path::new("north/nope")).unwrap_err();
        assert!(e.to_string().contains("no built-in profile"), "{e}");
        assert!(ProfileFile::find(Path::new("/north/current")).is_err());
        assert!(ProfileFile::find(Path::new("../north/current")).is_err());

        let tmp = tempfile::tempdir().unwrap();
        let disk = tmp.path().join("current.toml");
        std::fs::write(&disk, "extends = \"nope.toml\"\n").unwrap();
        assert_eq!(
            ProfileFile::find(&disk).unwrap(),
            ProfileFile::Disk(disk.clone())
        );
        let e = load(&disk, &[]).unwrap_err().to_string();
        assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_broken_built_in_file_is_named_with_line_and_field() {
        struct Patched;
        impl ProfileSource for Patched {
            fn read(&self, path: &Path) -> Result<String, String> {
                let text = BuiltIn.read(path)?;
                Ok(if path.ends_with("current.toml") {
                    text.replacen("premises = 30000", "premises = \"many\"", 1)
                } else {
                    text
                })
            }
            fn name(&self, path: &Path) -> String {
                BuiltIn.name(path)
            }
        }
        let e = Profile::load_from(&Patched, Path::new("north/option-a.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("<built-in>/north/current.toml:") && e.contains("premises"),
            "{e}"
        );
        assert!(
            e.contains("extended by <built-in>/north/option-a.toml"),
            "{e}"
        );
    }
}
