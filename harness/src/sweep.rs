//! `csp-harness sweep`: the same profiles simulated across values of one profile key (by default
//! `scenario.premises`, 250 … 1,000,000 log-spaced), drawn and tabulated against that value
//! ([`reports::sweep`]): "up to which outage size does Option A meet the DNO's 5 minutes?" is one
//! command.
//!
//! Each point is `simulate` of the resolved profile (after `extends` and its changes) with the key
//! set by [`virtual_hubs::Profile::with_override`], validated like a profile file. Points run in
//! parallel, each deterministic for its seed: the output never depends on the number of threads.

use crate::cli::SweepArgs;
use crate::outdir::ResultsFolder;
use anyhow::{Context, anyhow};
use reports::sweep::{Sweep, SweepLine, SweepPoint};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use virtual_hubs::Profile;

/// The default sweep of `scenario.premises`.
pub const DEFAULT_FROM: f64 = 250.0;
/// Its largest value.
pub const DEFAULT_TO: f64 = 1_000_000.0;

/// `n` values from `from` to `to`, evenly spaced on a log scale (both ends included).
pub fn log_spaced(from: f64, to: f64, n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![from];
    }
    let (a, b) = (from.ln(), to.ln());
    (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// A value given on the command line, typed like the key's current value: an integer key takes
/// `250` or `1e6`, a float key any number, a duration key `90s`; anything else is read as TOML, or
/// as a string.
pub fn typed_value(text: &str, current: Option<&toml::Value>) -> anyhow::Result<toml::Value> {
    let t = text.trim();
    let number = || -> anyhow::Result<f64> {
        t.replace('_', "")
            .parse::<f64>()
            .map_err(|_| anyhow!("`{t}` is not a number"))
    };
    Ok(match current {
        Some(toml::Value::Integer(_)) => {
            let v = number()?;
            if v.fract() != 0.0 || !v.is_finite() || v.abs() > 9e15 {
                return Err(anyhow!("`{t}` is not a whole number"));
            }
            toml::Value::Integer(v as i64)
        }
        Some(toml::Value::Float(_)) => toml::Value::Float(number()?),
        Some(toml::Value::String(_)) => toml::Value::String(t.to_string()),
        _ => match toml::from_str::<toml::Table>(&format!("v = {t}")) {
            Ok(mut tab) => tab
                .remove("v")
                .unwrap_or(toml::Value::String(t.to_string())),
            Err(_) => toml::Value::String(t.to_string()),
        },
    })
}

/// The number a value stands for on a graph's axis: itself, or a duration in seconds.
pub fn numeric(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        toml::Value::String(s) => virtual_hubs::units::Dur::parse(s)
            .ok()
            .map(|d| d.us() as f64 / 1e6),
        _ => None,
    }
}

/// How a value is written in tables (`250`, `90s`).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The profiles of a command that defaults to the seed's six.
pub fn profiles_or_seed(profiles: &[PathBuf], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !profiles.is_empty() {
        return Ok(profiles.to_vec());
    }
    // Not under `dir` (e.g. run from another folder): the built-in copies, as `compare` does.
    Ok(crate::compare::SEED_PROFILES
        .iter()
        .map(|p| dir.join(p))
        .collect())
}

/// `csp-harness sweep`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let paths = profiles_or_seed(&args.profile, &args.profiles_dir)?;
    // Every profile and every value is checked before anything runs.
    let mut jobs: Vec<(usize, usize, Profile, PathBuf)> = Vec::new();
    let mut lines: Vec<SweepLine> = Vec::new();
    let mut texts: Vec<Vec<(String, f64)>> = Vec::new();
    for (pi, path) in paths.iter().enumerate() {
        let base = crate::profiles::load(path, &[])?;
        let current = base.value_at(&args.key);
        if current.is_none() && args.values.is_empty() {
            return Err(anyhow!(
                "{}: no key `{}` in the resolved profile (see `csp-harness profile show`); \
                 give --values to set a key the profile leaves to its default",
                path.display(),
                args.key
            ));
        }
        let values: Vec<toml::Value> = if args.values.is_empty() {
            if !matches!(
                current,
                Some(toml::Value::Integer(_) | toml::Value::Float(_))
            ) {
                return Err(anyhow!(
                    "`{}` is not a number in {}: give its values with --values",
                    args.key,
                    path.display()
                ));
            }
            log_spaced(args.from, args.to, usize::from(args.points))
                .into_iter()
                .map(|v| match current {
                    Some(toml::Value::Integer(_)) => toml::Value::Integer(v.round() as i64),
                    _ => toml::Value::Float(v),
                })
                .collect()
        } else {
            args.values
                .iter()
                .map(|t| typed_value(t, current.as_ref()))
                .collect::<anyhow::Result<_>>()
                .with_context(|| format!("--values for `{}`", args.key))?
        };
        let mut point_texts = Vec::new();
        for (vi, v) in values.iter().enumerate() {
            let x = numeric(v).ok_or_else(|| {
                anyhow!(
                    "`{}` = {v} is neither a number nor a duration: a sweep draws its values \
                     on an axis",
                    args.key
                )
            })?;
            let p = base
                .with_override(&args.key, v.clone())
                .with_context(|| format!("{}", path.display()))?;
            jobs.push((pi, vi, p, path.clone()));
            point_texts.push((value_text(v), x));
        }
        texts.push(point_texts);
        lines.push(SweepLine {
            label: reports::runs::option_name(&base.option_label()),
            region: base.region(),
            points: Vec::new(),
        });
    }
    // The same option in two profiles (e.g. a storm and the seed's scenario) is told apart.
    for i in 0..lines.len() {
        if lines
            .iter()
            .enumerate()
            .any(|(j, l)| j != i && l.label == lines[i].label && l.region == lines[i].region)
        {
            lines[i].label = format!(
                "{} ({})",
                lines[i].label,
                paths[i]
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            );
        }
    }
    let folder = ResultsFolder::create(
        args.out.as_deref(),
        Path::new("out/sweep"),
        args.study.force,
    )?;
    let threads = crate::batch::threads(args.study.jobs);
    let total = jobs.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let runs = crate::batch::map(&jobs, threads, |_, (pi, vi, p, path)| {
        let r = crate::run::simulate_in_memory(p, path, args.study.seed).with_context(|| {
            format!("{} at {} = {}", path.display(), args.key, texts[*pi][*vi].0)
        })?;
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if !args.study.quiet {
            eprintln!(
                "[{n}/{total}] {} {} = {}: POA 95% {}, delivered {}",
                lines[*pi].label,
                args.key,
                texts[*pi][*vi].0,
                reports::format::time_or_never(r.summary.alerts.poa.time_to(95.0)),
                reports::format::pct(r.summary.alerts.poa.delivered_fraction)
            );
        }
        Ok(r.summary)
    })?;
    for ((pi, vi, _, _), summary) in jobs.iter().zip(runs) {
        let (text, x) = texts[*pi][*vi].clone();
        lines[*pi].points.push(SweepPoint { x, text, summary });
    }
    let sweep = Sweep {
        key: args.key.clone(),
        seed: args.study.seed,
        lines,
    };
    let out = folder.path();
    let written = reports::sweep::write_sweep(&sweep, out)
        .with_context(|| format!("cannot write the sweep to {}", out.display()))?;
    crate::batch::finish_study(
        &folder,
        written,
        args.study.quiet,
        (total, threads, started),
    );
    if !args.study.quiet {
        crate::cli::say(&reports::sweep::answers_table(&sweep).markdown());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_spacing_hits_both_ends() {
        let v = log_spaced(250.0, 1_000_000.0, 10);
        assert_eq!(v.len(), 10);
        assert!((v[0] - 250.0).abs() < 1e-6 && (v[9] - 1_000_000.0).abs() < 1e-3);
        assert!(v.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn values_take_the_keys_type() {
        let int = toml::Value::Integer(1);
        assert_eq!(
            typed_value("1e6", Some(&int)).ok(),
            Some(toml::Value::Integer(1_000_000))
        );
        assert!(typed_value("2.5", Some(&int)).is_err());
        let f = toml::Value::Float(1.0);
        assert_eq!(
            typed_value("3", Some(&f)).ok(),
            Some(toml::Value::Float(3.0))
        );
        let d = toml::Value::String("90s".into());
        let v = typed_value("2m", Some(&d)).ok();
        assert_eq!(v.as_ref().and_then(numeric), Some(120.0));
        assert_eq!(typed_value("7", None).ok(), Some(toml::Value::Integer(7)));
    }
}
