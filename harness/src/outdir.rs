//! Where results go, so that no run ever overwrites another by accident (the habit of Gatling,
//! which writes a new folder per run):
//!
//! - by default a new folder per run, `out/<series>/<UTC time>/` (e.g.
//!   `out/north-current+3,4/20261130T021700Z/`), where the series is the profile's name plus any
//!   `--changes` (sorted, so `3,4` and `4,3` are one series, and a different change set is always a
//!   different series); `out/<series>/latest` is a symbolic link to the newest finished one;
//! - `--out DIR` writes exactly there, and refuses a folder that exists and is not empty unless
//!   `--force` is given, which first removes the files a run writes there
//!   ([`results::layout::run_files`] and the graphs) and leaves anything else alone.
//!
//! This module only chooses, creates and links folders; it never writes results.

use anyhow::{Context, anyhow};
use std::path::{Path, PathBuf};

/// The name of the link to the newest run of a series.
pub const LATEST: &str = "latest";

/// A results folder, created and empty (or cleared of an earlier run's files with `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsFolder {
    path: PathBuf,
    /// The `latest` link to update once the run is written (default layout only).
    latest: Option<PathBuf>,
}

/// The series folder name of a profile with extra `--changes`: `north-current`,
/// `north-current+3,4`.
pub fn series_name(profile_name: &str, changes: &[String]) -> String {
    let mut name = profile_name.replace(['/', '\\'], "-");
    let mut ids: Vec<&str> = changes
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    // Numbers in numeric order, names after them.
    ids.sort_by_key(|c| (c.parse::<u32>().unwrap_or(u32::MAX), c.to_string()));
    ids.dedup();
    if !ids.is_empty() {
        name.push('+');
        name.push_str(&ids.join(","));
    }
    name
}

impl ResultsFolder {
    /// `explicit` (`--out DIR`) if given, else a new timestamped folder under `series`.
    pub fn create(explicit: Option<&Path>, series: &Path, force: bool) -> anyhow::Result<Self> {
        match explicit {
            Some(dir) => ResultsFolder::explicit(dir, force),
            None => ResultsFolder::new_in_series(series),
        }
    }

    /// Exactly `dir`: created if missing; refused if not empty, unless `force`.
    pub fn explicit(dir: &Path, force: bool) -> anyhow::Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(anyhow!(
                "results folder {} exists and is not a folder",
                dir.display()
            ));
        }
        let non_empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .with_context(|| format!("cannot read results folder {}", dir.display()))?
                .next()
                .is_some();
        if non_empty {
            if !force {
                return Err(anyhow!(
                    "results folder {} is not empty: results are never overwritten by accident. \
                     Leave out --out (each run then gets a new folder under out/), choose an \
                     empty folder, or add --force to replace the results in it",
                    dir.display()
                ));
            }
            clear_run_files(dir)?;
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create results folder {}", dir.display()))?;
        Ok(ResultsFolder {
            path: dir.to_path_buf(),
            latest: None,
        })
    }

    /// A new folder `series/<UTC time>` (with `-2`, `-3`... if two runs start in one second).
    pub fn new_in_series(series: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(series)
            .with_context(|| format!("cannot create results folder {}", series.display()))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        for n in 1u32.. {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let path = series.join(&name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    return Ok(ResultsFolder {
                        path,
                        latest: Some(series.join(LATEST)),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create results folder {}", path.display())
                    });
                }
            }
        }
        unreachable!("u32 of folders in one second")
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Points the series' `latest` link at this folder (default layout only; a no-op for
    /// `--out`). Call once the results are written. A link that cannot be made is a warning: the
    /// results themselves are in place.
    pub fn publish(&self) {
        let Some(link) = &self.latest else { return };
        if let Err(e) = point_link(link, &self.path) {
            eprintln!(
                "warning: cannot point {} at {}: {e}",
                link.display(),
                self.path.display()
            );
        }
    }
}

/// Replaces `link` with a relative symbolic link to `target` (a sibling folder) in one rename, so
/// a reader never sees it missing.
#[cfg(unix)]
fn point_link(link: &Path, target: &Path) -> std::io::Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::other("results folder has no name"))?;
    let tmp = link.with_file_name(format!(".{LATEST}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, link)
}

#[cfg(not(unix))]
fn point_link(_link: &Path, _target: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Removes what a run writes into a folder: the layout's files and the graphs (`*.png`, `*.svg`).
fn clear_run_files(dir: &Path) -> anyhow::Result<()> {
    let names = results::layout::run_files();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let graph = name.ends_with(".png") || name.ends_with(".svg");
        if (graph || names.contains(&name)) && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("--force: cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_keep_change_sets_apart() {
        assert_eq!(series_name("north/current", &[]), "north-current");
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            series_name("north/current", &c(&["4", "3"])),
            "north-current+3,4"
        );
        assert_eq!(
            series_name("north/current", &c(&["3", "4", "3", "10"])),
            "north-current+3,4,10"
        );
        assert_ne!(
            series_name("north/current", &c(&["3"])),
            series_name("north/current", &c(&["4"]))
        );
    }

    #[test]
    fn each_run_gets_a_new_folder_and_latest_follows() {
        let tmp = tempfile::tempdir().unwrap();
        let series = tmp.path().join("north-current");
        let a = ResultsFolder::new_in_series(&series).unwrap();
        let b = ResultsFolder::new_in_series(&series).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
        a.publish();
        let latest = series.join(LATEST);
        assert_eq!(
            latest.canonicalize().unwrap(),
            a.path().canonicalize().unwrap()
        );
        b.publish();
        assert_eq!(
            latest.canonicalize().unwrap(),
            b.path().canonicalize().unwrap()
        );
        // Relative, so the whole out/ folder can be moved or archived.
        assert!(std::fs::read_link(&latest).unwrap().is_relative());
    }

    #[test]
    fn an_explicit_folder_is_refused_when_not_empty_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r");
        ResultsFolder::explicit(&dir, false).unwrap();
        ResultsFolder::explicit(&dir, false).expect("an empty folder is fine");
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        std::fs::write(dir.join("poa.png"), "x").unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = ResultsFolder::explicit(&dir, false).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        let f = ResultsFolder::explicit(&dir, true).unwrap();
        assert!(!dir.join("summary.json").exists() && !dir.join("poa.png").exists());
        assert!(
            dir.join("notes.txt").exists(),
            "--force leaves other files alone"
        );
        f.publish();
        assert!(!tmp.path().join(LATEST).exists(), "no link for --out");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(ResultsFolder::explicit(&file, true).is_err());
    }
}
