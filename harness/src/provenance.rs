//! Where a result comes from, recorded as a run goes: start and end time, the harness build (version
//! and git commit, from `build.rs`), the command line, the resolved profile's hash and its changes'
//! titles, the machine and what the run cost it. Written as `run.json` ([`results::RunRecord`]),
//! never into `summary.json`, which must stay a function of profile and seed.

use crate::host::HealthSampler;
use results::{
    ChangeRecord, HarnessBuild, ProfileRecord, RUN_SCHEMA_VERSION, Resources, RunRecord,
};
use sha2::{Digest, Sha256};
use std::time::{Instant, SystemTime};
use virtual_hubs::Profile;

/// The running harness's build.
pub fn harness_build() -> HarnessBuild {
    HarnessBuild {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: option_env!("CSP_GIT_COMMIT").map(str::to_string),
    }
}

/// The SHA-256 of a resolved profile (`profile show` output) without its first line, which only
/// says which file it was read from: the same parameters give the same hash wherever they live.
pub fn profile_hash(resolved: &str) -> String {
    let body = resolved.split_once('\n').map_or("", |(_, rest)| rest);
    let digest = Sha256::digest(body.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The enabled changes `ids` with their titles, as the resolved profile's `# changes:` line lists
/// them (`1 (Microservices ...); 3 (New North alert channels)`, or `none (current)`). A change
/// whose title cannot be found keeps its number and says so.
pub fn change_titles(resolved: &str, ids: &[String]) -> Vec<ChangeRecord> {
    let listed = listed_titles(resolved);
    ids.iter()
        .map(|id| ChangeRecord {
            id: id.clone(),
            title: listed
                .iter()
                .find(|(i, _)| i == id)
                .map_or_else(|| "(title not found)".to_string(), |(_, t)| t.clone()),
        })
        .collect()
}

fn listed_titles(resolved: &str) -> Vec<(String, String)> {
    let Some(line) = resolved.lines().find_map(|l| l.strip_prefix("# changes: ")) else {
        return Vec::new();
    };
    line.split("; ")
        .filter_map(|item| {
            let (id, rest) = item.split_once(" (")?;
            let title = rest.strip_suffix(')')?;
            Some((id.to_string(), title.to_string()))
        })
        .collect()
}

/// Started with a run; [`Provenance::finish`] gives its `run.json`.
#[derive(Debug)]
pub struct Provenance {
    started: SystemTime,
    wall: Instant,
    sampler: HealthSampler,
    profile: ProfileRecord,
    insecure: bool,
    run_id: Option<String>,
}

impl Provenance {
    /// Starts the clock and the resource sampler for a run of `profile`.
    pub fn start(profile: &Profile, insecure: bool) -> Provenance {
        let resolved = profile.to_resolved_toml();
        Provenance {
            started: SystemTime::now(),
            wall: Instant::now(),
            sampler: HealthSampler::start(),
            profile: ProfileRecord {
                name: profile.name().to_string(),
                path: Some(profile.source().to_string()),
                sha256: profile_hash(&resolved),
                changes: change_titles(&resolved, &profile.changes()),
            },
            insecure,
            run_id: None,
        }
    }

    /// Records the run id that scopes this run's alert ids at the endpoint.
    pub fn set_run_id(&mut self, id: String) {
        self.run_id = Some(id);
    }

    /// Stops the sampler and the clock.
    pub fn finish(self) -> RunRecord {
        let s = self.sampler.finish();
        RunRecord {
            schema_version: RUN_SCHEMA_VERSION,
            started_at: self.started.into(),
            ended_at: SystemTime::now().into(),
            wall_s: self.wall.elapsed().as_secs_f64(),
            harness: harness_build(),
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            profile: self.profile,
            insecure: self.insecure,
            run_id: self.run_id,
            merged_by: None,
            shards: Vec::new(),
            host: crate::host::host_record(),
            resources: Resources {
                samples: s.samples,
                cpu_pct_max: s.cpu_pct_max,
                cpu_pct_mean: s.cpu_pct_mean,
                rss_max_bytes: s.rss_max_bytes,
                rss_mean_bytes: s.rss_mean_bytes,
                logical_cpus: s.logical_cpus,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_where_the_profile_was_read_from() {
        let a = "# resolved from profiles/north/current.toml\n# changes: none (current)\nx = 1\n";
        let b = "# resolved from ./other/place.toml\n# changes: none (current)\nx = 1\n";
        let c = "# resolved from profiles/north/current.toml\n# changes: none (current)\nx = 2\n";
        assert_eq!(profile_hash(a), profile_hash(b));
        assert_ne!(profile_hash(a), profile_hash(c));
        assert_eq!(profile_hash(a).len(), 64);
    }

    #[test]
    fn change_titles_are_read_from_the_resolved_profile() {
        let r = "# resolved from x\n# changes: 1 (Microservices in the Central&South systems); \
                 3 (New North alert channels)\nchanges = [\"1\", \"3\"]\n";
        let t = change_titles(r, &["1".into(), "3".into()]);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].id, "3");
        assert_eq!(t[1].title, "New North alert channels");
        assert!(change_titles("# resolved from x\n# changes: none (current)\n", &[]).is_empty());
        let lost = change_titles("# resolved from x\n", &["2".into()]);
        assert_eq!(lost[0].title, "(title not found)");
    }

    #[test]
    fn the_real_profiles_name_their_changes() {
        let p = Profile::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../profiles/north/option-a.toml"),
        )
        .unwrap();
        let t = change_titles(&p.to_resolved_toml(), &p.changes());
        let ids: Vec<&str> = t.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, p.changes());
        assert!(t.iter().all(|c| !c.title.is_empty()));
    }
}
