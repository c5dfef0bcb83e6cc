//! Changing a resolved profile one key at a time, and finding which of its parameters are
//! calibrated guesses.
//!
//! * [`Profile::with_override`] sets a dotted key (`scenario.premises`, `stages.throttle.rate`) of
//!   the *resolved* profile — after `extends` and the technical changes — and validates the result
//!   exactly as a profile file is validated. This is what `sweep` varies and `sensitivity`
//!   perturbs. Keys address tables only (not the `[[outage]]` list).
//! * [`tagged`] reads the profile's files (its `extends` chain, and the patches its enabled changes
//!   make to its region in the change file) with `toml_edit`, which keeps comments, and lists every
//!   parameter whose line comment carries a source tag such as `[cal]`, `[cal: ...]` or
//!   `[cal; ...]`. No list of calibrated parameters is kept anywhere else.
//! * [`perturb`] scales a parameter's value (numbers, durations, and the numbers and durations
//!   inside a table such as `{ min = "10s", max = "110s" }`).
//!
//! This module reads profile files (as [`crate::profile`] does) and never simulates.

use crate::profile::{Files, Layered, ParamsLayer, Profile, ProfileError, ProfileSource};
use crate::units::Dur;
use ledger::Region;
use std::path::{Path, PathBuf};

impl Profile {
    /// The resolved profile as a TOML value (what `profile show` prints).
    fn as_value(&self) -> Result<toml::Value, ProfileError> {
        toml::Value::try_from(&self.params)
            .map_err(|e| ProfileError(format!("cannot represent the profile as TOML: {e}")))
    }

    /// The effective value of a dotted key of the resolved profile (`None`: no such key).
    pub fn value_at(&self, key: &str) -> Option<toml::Value> {
        let mut v = self.as_value().ok()?;
        for part in key.split('.') {
            v = v.as_table_mut()?.remove(part)?;
        }
        Some(v)
    }

    /// The same profile with `key` (dotted, e.g. `stages.throttle.rate`) set to `value`, validated
    /// like a profile file; applied after `extends` and the technical changes.
    pub fn with_override(&self, key: &str, value: toml::Value) -> Result<Profile, ProfileError> {
        self.with_overrides(&[(key.to_string(), value)])
    }

    /// [`Profile::with_override`] for several keys, in order.
    pub fn with_overrides(&self, set: &[(String, toml::Value)]) -> Result<Profile, ProfileError> {
        let mut doc = self.as_value()?;
        for (key, value) in set {
            let bad = |why: String| ProfileError(format!("override `{key}`: {why}"));
            let parts: Vec<&str> = key.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(bad("not a dotted key (e.g. `stages.throttle.rate`)".into()));
            }
            let (last, path) = parts.split_last().ok_or_else(|| bad("empty key".into()))?;
            let mut t = doc
                .as_table_mut()
                .ok_or_else(|| bad("the profile is not a table".into()))?;
            for (i, p) in path.iter().enumerate() {
                t = t
                    .entry(p.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| bad(format!("`{}` is not a table", parts[..=i].join("."))))?;
            }
            t.insert(last.to_string(), value.clone());
        }
        let what = || {
            set.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let layer: ParamsLayer = doc
            .try_into()
            .map_err(|e: toml::de::Error| ProfileError(format!("override {}: {e}", what())))?;
        let params = layer
            .resolve("")
            .map_err(|e| ProfileError(format!("override {}: {e}", what())))?;
        let region = Region::new(&params.region.name, &params.region.title)
            .map_err(|e| ProfileError(format!("override {}: field `region`: {e}", what())))?;
        let p = Profile {
            params,
            region,
            ..self.clone()
        };
        p.check()
            .map_err(|e| ProfileError(format!("override {}: {e}", what())))?;
        Ok(p)
    }
}

/// A parameter with a source tag in its line comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// Its dotted key in the resolved profile (`stages.throttle.rate`).
    pub key: String,
    /// Where it is written (the first place, in the order the files are read: base files first,
    /// then the change file).
    pub file: PathBuf,
    /// Line, 1-based.
    pub line: usize,
    /// Its line comment, without `#`.
    pub comment: String,
    /// Further places that set it (e.g. the patch of a change it is enabled by), `file:line`.
    pub also: Vec<String>,
}

/// Keys of a profile file that are not model parameters.
const NOT_PARAMETERS: [&str; 6] = [
    "extends",
    "change_file",
    "changes",
    "name",
    "region",
    "thresholds",
];

/// Does a comment carry the tag (`[cal]`, `[cal: ...]`, `[cal; ...]`)?
pub fn has_tag(comment: &str, tag: &str) -> bool {
    let open = format!("[{tag}");
    comment.match_indices(&open).any(|(i, _)| {
        comment[i + open.len()..]
            .chars()
            .next()
            .is_some_and(|c| matches!(c, ']' | ':' | ';' | ' '))
    })
}

/// Every parameter of `profile` whose line comment carries `[tag…]` (e.g. `"cal"`), in the files
/// it was read from: its `extends` chain (base first) and the patches its enabled changes make to
/// its region. Each key once, with the effective (last) place first in `also`-order.
pub fn tagged(profile: &Profile, tag: &str) -> Result<Vec<Tagged>, ProfileError> {
    tagged_in(profile, &Files, tag)
}

/// [`tagged`] for a profile read from `src` (e.g. the profiles built into a binary); the files are
/// named as `src` names them.
pub fn tagged_in(
    profile: &Profile,
    src: &dyn ProfileSource,
    tag: &str,
) -> Result<Vec<Tagged>, ProfileError> {
    let mut chain = Vec::new();
    let mut at = profile.path.clone();
    let mut change_file: Option<PathBuf> = None;
    for _ in 0..=8 {
        let doc = read_doc(src, &at)?;
        if change_file.is_none()
            && let Some(cf) = doc.get("change_file").and_then(|v| v.as_str())
        {
            change_file = Some(rel(&at, cf));
        }
        let next = doc
            .get("extends")
            .and_then(|v| v.as_str())
            .map(|b| rel(&at, b));
        chain.push((at.clone(), doc));
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    chain.reverse();
    let mut out: Vec<Tagged> = Vec::new();
    for (path, doc) in &chain {
        let text = read_text(src, path)?;
        walk(
            doc.as_table(),
            "",
            Path::new(&src.name(path)),
            &text,
            tag,
            &mut out,
        );
    }
    if let (Some(cf), false) = (change_file, profile.changes.is_empty()) {
        let doc = read_doc(src, &cf)?;
        let text = read_text(src, &cf)?;
        let cf_name = PathBuf::from(src.name(&cf));
        let region = profile.region.as_str();
        for c in &profile.changes {
            let patch = doc
                .get("change")
                .and_then(|t| t.get(c.as_str()))
                .and_then(|t| t.get(region))
                .and_then(|t| t.as_table_like());
            if let Some(t) = patch {
                walk_like(t, "", &cf_name, &text, tag, &mut out);
            }
        }
    }
    Ok(out)
}

fn rel(base: &Path, p: &str) -> PathBuf {
    base.parent().unwrap_or(Path::new(".")).join(p)
}

fn read_text(src: &dyn ProfileSource, path: &Path) -> Result<String, ProfileError> {
    src.read(path)
        .map_err(|e| ProfileError(format!("{}: {e}", src.name(path))))
}

fn read_doc(
    src: &dyn ProfileSource,
    path: &Path,
) -> Result<toml_edit::Document<String>, ProfileError> {
    let text = read_text(src, path)?;
    toml_edit::Document::parse(text)
        .map_err(|e| ProfileError(format!("{}: {}", src.name(path), e.message())))
}

fn walk(
    t: &toml_edit::Table,
    prefix: &str,
    file: &Path,
    text: &str,
    tag: &str,
    out: &mut Vec<Tagged>,
) {
    walk_like(t, prefix, file, text, tag, out);
}

fn walk_like(
    t: &dyn toml_edit::TableLike,
    prefix: &str,
    file: &Path,
    text: &str,
    tag: &str,
    out: &mut Vec<Tagged>,
) {
    for (k, item) in t.iter() {
        if prefix.is_empty() && NOT_PARAMETERS.contains(&k) {
            continue;
        }
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match item {
            toml_edit::Item::Table(sub) => walk(sub, &key, file, text, tag, out),
            toml_edit::Item::Value(v) => {
                if let Some(sub) = v.as_inline_table()
                    && sub.iter().all(|(_, v)| v.is_inline_table())
                    && !sub.is_empty()
                {
                    // A dotted key written inline ({ a = { ... } }): look inside.
                    walk_like(sub, &key, file, text, tag, out);
                    continue;
                }
                // A parsed document keeps its decor as spans into the text.
                let comment = v
                    .decor()
                    .suffix()
                    .and_then(|r| r.as_str().or_else(|| r.span().and_then(|s| text.get(s))))
                    .map(|s| s.trim().trim_start_matches('#').trim().to_string())
                    .unwrap_or_default();
                if !has_tag(&comment, tag) {
                    continue;
                }
                let line = v.span().map_or(0, |s| {
                    text.get(..s.start)
                        .map_or(0, |t| t.matches('\n').count() + 1)
                });
                match out.iter_mut().find(|x| x.key == key) {
                    Some(x) => x.also.push(format!("{}:{line}", file.display())),
                    None => out.push(Tagged {
                        key,
                        file: file.to_path_buf(),
                        line,
                        comment,
                        also: Vec::new(),
                    }),
                }
            }
            toml_edit::Item::ArrayOfTables(_) | toml_edit::Item::None => {}
        }
    }
}

/// `v` scaled by `factor`: integers (rounded), floats, durations (`"90s"`), and the numbers and
/// durations inside a table (`{ min = "10s", max = "110s" }`, `{ dist = "fixed", duration =
/// "16m" }`). `None` when nothing in it can be scaled.
pub fn perturb(v: &toml::Value, factor: f64) -> Option<toml::Value> {
    match v {
        toml::Value::Integer(i) => Some(toml::Value::Integer((*i as f64 * factor).round() as i64)),
        // Six significant digits: 2.04 × 0.8 is written 1.632, not 1.6320000000000001.
        toml::Value::Float(x) => Some(toml::Value::Float(round_sig(x * factor, 6))),
        toml::Value::String(s) => {
            let d = Dur::parse(s).ok()?;
            let scaled = Dur((d.us() as f64 * factor).round() as u64);
            Some(toml::Value::String(scaled.to_string()))
        }
        toml::Value::Table(t) => {
            let mut any = false;
            let out: toml::Table = t
                .iter()
                .map(|(k, x)| match perturb(x, factor) {
                    Some(y) => {
                        any = true;
                        (k.clone(), y)
                    }
                    None => (k.clone(), x.clone()),
                })
                .collect();
            any.then_some(toml::Value::Table(out))
        }
        _ => None,
    }
}

fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_recognised_in_their_forms() {
        assert!(has_tag("tokens/s [cal: POA 95% at 15:00]", "cal"));
        assert!(has_tag("[cal]", "cal"));
        assert!(has_tag("receive groups [cal; hint K=21]", "cal"));
        assert!(!has_tag("[calibrated]", "cal"));
        assert!(!has_tag("[seed] 30,000 homes", "cal"));
        assert!(has_tag("[seed] 30,000 homes", "seed"));
    }

    #[test]
    fn perturbing_scales_numbers_and_durations_and_leaves_names() {
        let v = |s: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone()
        };
        assert_eq!(perturb(&v("5"), 1.2), Some(v("6")));
        assert_eq!(perturb(&v("2.0"), 0.5), Some(v("1.0")));
        assert_eq!(perturb(&v("2.04"), 0.8), Some(v("1.632")));
        assert_eq!(perturb(&v("1428.6"), 0.8), Some(v("1142.88")));
        assert_eq!(perturb(&v("\"90s\""), 1.2), Some(v("\"1m48s\"")));
        assert_eq!(
            perturb(&v("{ dist = \"fixed\", duration = \"10m\" }"), 0.8),
            Some(v("{ dist = \"fixed\", duration = \"8m\" }"))
        );
        assert_eq!(perturb(&v("\"esme\""), 1.2), None);
        assert_eq!(perturb(&v("[\"a\"]"), 1.2), None);
    }
}
