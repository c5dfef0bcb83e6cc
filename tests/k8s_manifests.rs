//! `deploy/k8s/` cannot rot: the manifests parse as YAML; the shards' Job is an Indexed Job whose
//! completions, parallelism and `--shards` agree; every `csp-harness` command line in them parses
//! with the real command line (clap's own parser, once per completion index, `$(VAR)` expanded as
//! Kubernetes does); each shard writes its own folder on the shared volume and the merge Job reads
//! exactly those folders from the same volume; and the image is the Dockerfile's (its entrypoint
//! is `csp-harness`, its user the pods' `runAsUser`).
//!
//! No cluster runs here: what a cluster would do with these files is Kubernetes' part; what the
//! files ask of `csp-harness` is checked, and the checks are shown to fail on broken copies.

#![allow(clippy::unwrap_used)] // tests may panic on setup failures

mod cli_lines;

use clap::FromArgMatches as _;
use cli_lines::{harness_commands, logical_lines};
use csp_harness::cli::{Cli, Command};
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};

fn k8s_dir() -> PathBuf {
    csp_loadtest::repo_root().join("deploy").join("k8s")
}

fn manifest(name: &str) -> Value {
    let path = k8s_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// The value at a path of mapping keys.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| {
        v.as_mapping()?.get(Value::String((*key).into()))
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    at(v, path)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no string at {}", path.join(".")))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => panic!("a command word that is not a string: {other:?}"),
        })
        .collect()
}

/// Replaces `$(NAME)` as Kubernetes does in `command` and `args`; a reference to a variable that
/// is neither given nor in the container's `env` is an error (Kubernetes would leave it as is).
fn expand(word: &str, vars: &[(String, String)], declared: &[String]) -> Result<String, String> {
    let mut out = word.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("$({k})"), v);
    }
    if let Some(start) = out.find("$(") {
        let name = out[start + 2..].split(')').next().unwrap_or("");
        if !declared.iter().any(|d| d == name) {
            return Err(format!(
                "{word:?} refers to $({name}), which the container does not have"
            ));
        }
    }
    Ok(out)
}

/// The `csp-harness` argument lists (program name left out) a container runs, with `vars`
/// expanded: its `args` when the image's entrypoint runs (no `command`), or the `csp-harness`
/// commands of a `sh -c` script.
fn container_commands(c: &Value, vars: &[(String, String)]) -> Result<Vec<Vec<String>>, String> {
    let declared: Vec<String> = at(c, &["env"])
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|e| at(e, &["name"]).and_then(Value::as_str).map(String::from))
        .collect();
    let words = |key: &str| -> Result<Vec<String>, String> {
        strings(at(c, &[key]))
            .iter()
            .map(|w| expand(w, vars, &declared))
            .collect()
    };
    let (command, args) = (words("command")?, words("args")?);
    match command.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => Ok(vec![args]),
        ["sh" | "/bin/sh", "-c"] => {
            let script = args.first().ok_or("sh -c without a script")?;
            Ok(logical_lines(script)
                .iter()
                .flat_map(|l| harness_commands(l))
                .collect())
        }
        _ => Err(format!("a command this test does not know: {command:?}")),
    }
}

/// Parses one command line with the real CLI.
fn parse(args: &[String]) -> Result<Command, String> {
    let argv = std::iter::once("csp-harness".to_string()).chain(args.iter().cloned());
    let m = csp_harness::cli::command()
        .try_get_matches_from(argv)
        .map_err(|e| format!("`csp-harness {}` does not parse:\n{e}", args.join(" ")))?;
    Ok(Cli::from_arg_matches(&m)
        .map_err(|e| e.to_string())?
        .command)
}

/// The pod template's one container.
fn container(job: &Value) -> Result<&Value, String> {
    match at(job, &["spec", "template", "spec", "containers"]).and_then(Value::as_sequence) {
        Some(cs) if cs.len() == 1 => Ok(&cs[0]),
        other => Err(format!("expected one container, found {other:?}")),
    }
}

/// The folder the container mounts the claim `claim` at.
fn claim_mount(job: &Value, claim: &str) -> Result<PathBuf, String> {
    let volumes = at(job, &["spec", "template", "spec", "volumes"])
        .and_then(Value::as_sequence)
        .ok_or("no volumes")?;
    let volume = volumes
        .iter()
        .find(|v| str_at(v, &["persistentVolumeClaim", "claimName"]) == Ok(claim))
        .ok_or_else(|| format!("no volume of the claim {claim}"))?;
    let name = str_at(volume, &["name"])?;
    let mounts = at(container(job)?, &["volumeMounts"])
        .and_then(Value::as_sequence)
        .ok_or("no volumeMounts")?;
    let mount = mounts
        .iter()
        .find(|m| str_at(m, &["name"]) == Ok(name))
        .ok_or_else(|| format!("volume {name} is not mounted"))?;
    Ok(PathBuf::from(str_at(mount, &["mountPath"])?))
}

fn int_at(v: &Value, path: &[&str]) -> Result<u32, String> {
    at(v, path)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("no whole number at {}", path.join(".")))
}

/// What the shards' Job makes: N and each shard's results folder.
#[derive(Debug)]
struct Shards {
    count: u32,
    outs: Vec<PathBuf>,
}

const CLAIM: &str = "csp-results";

/// Checks the shards' Job; see the module.
fn check_shards_job(job: &Value) -> Result<Shards, String> {
    if str_at(job, &["apiVersion"])? != "batch/v1" || str_at(job, &["kind"])? != "Job" {
        return Err("not a batch/v1 Job".into());
    }
    if str_at(job, &["spec", "completionMode"])? != "Indexed" {
        return Err("completionMode is not Indexed: pods get no JOB_COMPLETION_INDEX".into());
    }
    let count = int_at(job, &["spec", "completions"])?;
    let parallelism = int_at(job, &["spec", "parallelism"])?;
    if parallelism != count {
        return Err(format!(
            "parallelism {parallelism} but completions {count}: the shards must run together"
        ));
    }
    if str_at(job, &["spec", "template", "spec", "restartPolicy"])? != "Never" {
        return Err("restartPolicy is not Never".into());
    }
    let c = container(job)?;
    let env = at(c, &["env"])
        .and_then(Value::as_sequence)
        .ok_or("no env")?;
    let run_id = env
        .iter()
        .find(|e| str_at(e, &["name"]) == Ok("CSP_RUN_ID"))
        .ok_or("no CSP_RUN_ID: the shards would show the endpoint N runs")?;
    if !str_at(run_id, &["valueFrom", "fieldRef", "fieldPath"])?.contains("controller-uid") {
        return Err("CSP_RUN_ID is not the Job's uid".into());
    }
    let mount = claim_mount(job, CLAIM)?;
    let mut outs = Vec::new();
    for i in 0..count {
        let vars = [("JOB_COMPLETION_INDEX".to_string(), i.to_string())];
        let cmds = container_commands(c, &vars)?;
        let [args] = &cmds[..] else {
            return Err(format!(
                "shard {i}: expected one csp-harness command, got {cmds:?}"
            ));
        };
        let Command::Run(run) = parse(args)? else {
            return Err(format!("shard {i}: not `csp-harness run`: {args:?}"));
        };
        let common = &run.common;
        match (common.shard, common.shards) {
            (Some(s), _) if s.count == count && s.index == i => {}
            (None, Some(n)) if n == count => {}
            other => {
                return Err(format!(
                    "shard {i}: --shard/--shards {other:?} do not say shard {i} of {count}"
                ));
            }
        }
        let out = common.out.clone().ok_or("a shard without --out")?;
        if !out.starts_with(&mount) {
            return Err(format!(
                "shard {i} writes to {}, not on the shared volume at {}",
                out.display(),
                mount.display()
            ));
        }
        if !common.force {
            return Err("a retried shard needs --force to replace its failed attempt".into());
        }
        outs.push(out);
    }
    let mut distinct = outs.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != outs.len() {
        return Err(format!("shards share a results folder: {outs:?}"));
    }
    Ok(Shards { count, outs })
}

/// Does a shell glob with `*` only (as the merge's `shard-*`) match `path`?
fn glob_matches(pattern: &Path, path: &Path) -> bool {
    let (p, s) = (pattern.to_string_lossy(), path.to_string_lossy());
    match p.split_once('*') {
        None => p == s,
        Some((head, tail)) => {
            s.len() >= head.len() + tail.len()
                && s.starts_with(head)
                && s.ends_with(tail)
                && !s[head.len()..s.len() - tail.len()].contains('/')
        }
    }
}

/// Checks the merge Job against the shards it merges.
fn check_merge_job(job: &Value, shards: &Shards) -> Result<(), String> {
    if str_at(job, &["kind"])? != "Job" {
        return Err("not a Job".into());
    }
    let cmds = container_commands(container(job)?, &[])?;
    let [args] = &cmds[..] else {
        return Err(format!("expected one csp-harness command, got {cmds:?}"));
    };
    let Command::Merge(merge) = parse(args)? else {
        return Err(format!("not `csp-harness merge`: {args:?}"));
    };
    for out in &shards.outs {
        if !merge.dirs.iter().any(|d| glob_matches(d, out)) {
            return Err(format!(
                "the merge reads {:?}, which misses the shard folder {}",
                merge.dirs,
                out.display()
            ));
        }
    }
    let mount = claim_mount(job, CLAIM)?;
    if !merge.out.starts_with(&mount) || shards.outs.iter().any(|o| merge.out.starts_with(o)) {
        return Err(format!(
            "the merge writes to {}: not on the shared volume, or inside a shard",
            merge.out.display()
        ));
    }
    if let Some(t) = &merge.thresholds {
        csp_harness::check::load_thresholds(t).map_err(|e| format!("{e:#}"))?;
    }
    Ok(())
}

#[test]
fn the_shards_job_is_an_indexed_job_whose_commands_parse() {
    let shards = check_shards_job(&manifest("shards-job.yaml")).unwrap();
    assert!(shards.count >= 2, "{shards:?}");
    check_merge_job(&manifest("merge-job.yaml"), &shards).unwrap();
}

#[test]
fn the_shared_volume_is_one_claim_every_pod_can_mount() {
    let pvc = manifest("results-pvc.yaml");
    assert_eq!(str_at(&pvc, &["kind"]), Ok("PersistentVolumeClaim"));
    assert_eq!(str_at(&pvc, &["metadata", "name"]), Ok(CLAIM));
    let modes = strings(at(&pvc, &["spec", "accessModes"]));
    assert_eq!(modes, ["ReadWriteMany"], "N pods and the merge share it");
}

#[test]
fn the_image_is_the_dockerfiles() {
    let dockerfile = std::fs::read_to_string(csp_loadtest::repo_root().join("Dockerfile")).unwrap();
    let line = |prefix: &str| {
        dockerfile
            .lines()
            .rfind(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("Dockerfile: no {prefix}"))
            .to_string()
    };
    // Manifests without `command` rely on the image running csp-harness.
    assert_eq!(line("ENTRYPOINT "), r#"ENTRYPOINT ["csp-harness"]"#);
    let user = line("USER ");
    for name in ["shards-job.yaml", "merge-job.yaml"] {
        let job = manifest(name);
        let image = str_at(container(&job).unwrap(), &["image"]).unwrap();
        assert!(image.starts_with("csp-harness:"), "{name}: {image}");
        let uid = int_at(
            &job,
            &["spec", "template", "spec", "securityContext", "runAsUser"],
        )
        .unwrap();
        assert!(user.contains(&format!("USER {uid}")), "{name}: {user}");
    }
}

fn child<'a>(v: &'a mut Value, key: &str) -> &'a mut Value {
    v.as_mapping_mut()
        .and_then(|m| m.get_mut(key))
        .unwrap_or_else(|| panic!("no {key}"))
}

fn spec_mut(job: &mut Value) -> &mut serde_yaml_ng::Mapping {
    child(job, "spec").as_mapping_mut().unwrap()
}

/// The args of the pod template's one container.
fn args_mut(job: &mut Value) -> &mut Vec<Value> {
    let pod = child(child(child(job, "spec"), "template"), "spec");
    let c = &mut child(pod, "containers").as_sequence_mut().unwrap()[0];
    child(c, "args").as_sequence_mut().unwrap()
}

/// Replaces `from` by `to` in every arg, which must contain it somewhere.
fn edit_args(job: &mut Value, from: &str, to: &str) {
    let mut hit = false;
    for a in args_mut(job) {
        if let Some(s) = a.as_str().filter(|s| s.contains(from)) {
            *a = s.replace(from, to).into();
            hit = true;
        }
    }
    assert!(hit, "{from} is in no arg");
}

/// The checks above can fail: broken copies of the manifests are refused, each for its reason.
#[test]
fn broken_manifests_are_refused() {
    let good = manifest("shards-job.yaml");
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        edit(&mut v);
        check_shards_job(&v).unwrap_err()
    };
    let e = broken(&|v| {
        spec_mut(v).remove("completionMode");
    });
    assert!(e.contains("completionMode"), "{e}");
    let e = broken(&|v| {
        spec_mut(v).insert("completions".into(), 3.into());
        spec_mut(v).insert("parallelism".into(), 3.into());
    });
    assert!(e.contains("do not say shard"), "{e}");
    let e = broken(&|v| {
        spec_mut(v).insert("parallelism".into(), 1.into());
    });
    assert!(e.contains("parallelism 1"), "{e}");
    let e = broken(&|v| args_mut(v).push("--no-such-flag".into()));
    assert!(e.contains("does not parse"), "{e}");
    let e = broken(&|v| edit_args(v, "$(JOB_COMPLETION_INDEX)", "$(INDEX)"));
    assert!(e.contains("$(INDEX)"), "{e}");
    let e = broken(&|v| edit_args(v, "shard-$(JOB_COMPLETION_INDEX)", "shard"));
    assert!(e.contains("share a results folder"), "{e}");
    let e = broken(&|v| edit_args(v, "/csp/out/", "/tmp/"));
    assert!(e.contains("not on the shared volume"), "{e}");

    // A merge that reads other folders than the shards write, or names a thresholds file that
    // does not exist.
    let shards = check_shards_job(&good).unwrap();
    let merge = manifest("merge-job.yaml");
    let mut m = merge.clone();
    edit_args(&mut m, "shard-*", "part-*");
    let e = check_merge_job(&m, &shards).unwrap_err();
    assert!(e.contains("misses the shard folder"), "{e}");
    let mut m = merge.clone();
    edit_args(&mut m, "north.thresholds", "nowhere.thresholds");
    let e = check_merge_job(&m, &shards).unwrap_err();
    assert!(e.contains("nowhere"), "{e}");
    let mut m = merge;
    edit_args(&mut m, "merge ", "mrege ");
    let e = check_merge_job(&m, &shards).unwrap_err();
    assert!(e.contains("unrecognized subcommand"), "{e}");
}

#[test]
fn the_glob_matches_like_the_shell() {
    let g = Path::new("/o/n/shard-*");
    assert!(glob_matches(g, Path::new("/o/n/shard-0")));
    assert!(glob_matches(g, Path::new("/o/n/shard-12")));
    assert!(!glob_matches(g, Path::new("/o/n/merged")));
    assert!(!glob_matches(g, Path::new("/o/n/shard-1/x")));
}
