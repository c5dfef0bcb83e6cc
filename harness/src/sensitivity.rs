//! `csp-harness sensitivity`: which calibrated guesses the conclusions rest on. Every parameter a
//! profile's files tag `[cal]` in its line comment ([`virtual_hubs::tweak::tagged`]; no list is
//! kept in code) is run at (100 − P)% and (100 + P)% of its value, everything else as calibrated,
//! and [`reports::sensitivity`] draws a tornado chart per headline figure.
//!
//! A parameter that cannot be scaled (a name), that rounds back to itself (an integer of 1), or
//! whose scaled value the profile's own validation refuses (a ratio that must stay ≥ 1) is not
//! run, and the table says why.

use crate::cli::SensitivityArgs;
use crate::outdir::ResultsFolder;
use anyhow::Context;
use reports::sensitivity::{Perturbed, Sensitivity};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use virtual_hubs::Profile;
use virtual_hubs::tweak::{perturb, tagged, tagged_in};

/// A study before its runs: what names it, and the tagged parameters not run (with why).
struct Head {
    name: String,
    label: String,
    region: ledger::Region,
    skipped: Vec<(String, String)>,
}

/// A parameter to run: key, where it is written, its value and the two values run.
struct Planned {
    key: String,
    place: String,
    base_text: String,
    low_text: String,
    high_text: String,
}

/// One simulation of the study: the base (no key) or a key at a factor.
struct Job {
    key: Option<(String, toml::Value)>,
    profile: Profile,
    path: PathBuf,
}

/// `csp-harness sensitivity`.
pub fn sensitivity(args: SensitivityArgs) -> anyhow::Result<ExitCode> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut heads: Vec<Head> = Vec::new();
    let mut planned: Vec<Vec<Planned>> = Vec::new();
    let (lo_f, hi_f) = (1.0 - args.by / 100.0, 1.0 + args.by / 100.0);
    for path in &args.profile {
        let file = crate::profiles::ProfileFile::find(path)?;
        let base = file.load(&[])?;
        let params = match file {
            crate::profiles::ProfileFile::Disk(_) => tagged(&base, &args.tag)?,
            crate::profiles::ProfileFile::BuiltIn(_) => {
                tagged_in(&base, &crate::profiles::BuiltIn, &args.tag)?
            }
        };
        if params.is_empty() {
            return Err(anyhow::anyhow!(
                "{}: no parameter's comment carries [{}]: nothing to perturb",
                path.display(),
                args.tag
            ));
        }
        let mut skipped = Vec::new();
        let mut plan = Vec::new();
        jobs.push(Job {
            key: None,
            profile: base.clone(),
            path: path.clone(),
        });
        for t in params {
            let place = format!("{}:{}", t.file.display(), t.line);
            let Some(v) = base.value_at(&t.key) else {
                skipped.push((t.key, format!("not in the resolved profile ({place})")));
                continue;
            };
            let (Some(lo), Some(hi)) = (perturb(&v, lo_f), perturb(&v, hi_f)) else {
                skipped.push((t.key, format!("{v} cannot be scaled")));
                continue;
            };
            if lo == v || hi == v {
                skipped.push((t.key, format!("{v} rounds back to itself at ±{}%", args.by)));
                continue;
            }
            let mut ok = Vec::new();
            for x in [&lo, &hi] {
                match base.with_override(&t.key, x.clone()) {
                    Ok(p) => ok.push(p),
                    Err(e) => {
                        let why = e.to_string().replace('\n', " ");
                        skipped.push((t.key.clone(), format!("the profile refuses it: {why}")));
                        break;
                    }
                }
            }
            if ok.len() < 2 {
                continue;
            }
            for (p, x) in ok.into_iter().zip([&lo, &hi]) {
                jobs.push(Job {
                    key: Some((t.key.clone(), x.clone())),
                    profile: p,
                    path: path.clone(),
                });
            }
            plan.push(Planned {
                key: t.key.clone(),
                place,
                base_text: crate::sweep::value_text(&v),
                low_text: crate::sweep::value_text(&lo),
                high_text: crate::sweep::value_text(&hi),
            });
        }
        heads.push(Head {
            name: base.name().replace('/', "-"),
            label: reports::runs::option_name(&base.option_label()),
            region: base.region(),
            skipped,
        });
        planned.push(plan);
    }
    let folder = ResultsFolder::create(
        args.out.as_deref(),
        Path::new("out/sensitivity"),
        args.study.force,
    )?;
    let threads = crate::batch::threads(args.study.jobs);
    let total = jobs.len();
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let summaries = crate::batch::map(&jobs, threads, |_, j| {
        let what = j.key.as_ref().map_or_else(
            || "as calibrated".to_string(),
            |(k, v)| format!("{k} = {v}"),
        );
        let r = crate::run::simulate_in_memory(&j.profile, &j.path, args.study.seed)
            .with_context(|| format!("{}: {what}", j.path.display()))?;
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if !args.study.quiet {
            eprintln!(
                "[{n}/{total}] {}: {what}: POA 95% {}",
                j.profile.name(),
                reports::format::time_or_never(r.summary.alerts.poa.time_to(95.0))
            );
        }
        Ok(r.summary)
    })?;
    // Jobs are in plan order: per study the base, then each parameter's low and high.
    let mut it = summaries.into_iter();
    let mut studies: Vec<Sensitivity> = Vec::new();
    for (head, plan) in heads.into_iter().zip(planned) {
        let Some(base) = it.next() else { break };
        let mut study = Sensitivity {
            name: head.name,
            label: head.label,
            region: head.region,
            by_pct: args.by,
            tag: args.tag.clone(),
            base,
            params: Vec::new(),
            skipped: head.skipped,
        };
        for p in plan {
            let (Some(low), Some(high)) = (it.next(), it.next()) else {
                break;
            };
            study.params.push(Perturbed {
                key: p.key,
                place: p.place,
                base_text: p.base_text,
                low_text: p.low_text,
                high_text: p.high_text,
                low,
                high,
            });
        }
        studies.push(study);
    }
    let out = folder.path();
    let written = reports::sensitivity::write_sensitivity(&studies, out)
        .with_context(|| format!("cannot write the sensitivity study to {}", out.display()))?;
    crate::batch::finish_study(
        &folder,
        written,
        args.study.quiet,
        (total, threads, started),
    );
    Ok(ExitCode::SUCCESS)
}
