//! Scraping a `/metrics` endpoint the way Prometheus does, for the live-metrics tests: an HTTP GET
//! asking for OpenMetrics, and a reader of the text that checks its structure (every sample
//! belongs to a family declared by `# TYPE`, with that type's suffix; the page ends with `# EOF`)
//! rather than trusting it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One sample: its name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name (`csp_alerts_delivered_total`).
    pub name: String,
    /// Label names and values (unescaped).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Family name → type, from the `# TYPE` lines.
    pub families: BTreeMap<String, String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The sample names a query can name: every family's, by its type (`_total` for a counter,
    /// `_bucket`/`_count`/`_sum` for a histogram, `_info` for an info), samples or not.
    pub fn queryable_names(&self) -> Vec<String> {
        self.families
            .iter()
            .flat_map(|(f, t)| suffixes(t).iter().map(move |s| format!("{f}{s}")))
            .collect()
    }

    /// The value of the one sample named `name` whose labels include `labels`; panics when there
    /// is none or more than one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let hits: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "{name}{labels:?}: {} samples match in the scrape",
            hits.len()
        );
        hits[0].value
    }

    /// [`Scrape::value`] as a whole number.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let v = self.value(name, labels);
        assert!(v >= 0.0 && v.fract() == 0.0, "{name}{labels:?} = {v}");
        v as u64
    }

    /// Every sample named `name`, keyed by the value of label `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| Some((s.labels.get(label)?.clone(), s.value)))
            .collect()
    }
}

fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "info" => &["_info"],
        "summary" => &["", "_count", "_sum", "_created"],
        _ => &[""],
    }
}

/// `GET http://ADDR/metrics` asking for OpenMetrics; panics on anything but a 200 with the
/// OpenMetrics content type.
pub fn scrape(url: &str) -> Scrape {
    try_scrape(url).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// [`scrape`], but a server that is not there (or goes away mid-answer) is an `Err`, as a
/// Prometheus scrape that fails; a server that answers wrongly still panics.
pub fn try_scrape(url: &str) -> Result<Scrape, std::io::Error> {
    let addr = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("not a metrics URL: {url}"));
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(
            "connection closed before a whole answer",
        ));
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    Ok(parse(body))
}

/// Reads OpenMetrics text, checking its structure; panics with the offending line otherwise.
pub fn parse(text: &str) -> Scrape {
    let mut out = Scrape::default();
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end");
    for line in text.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (what, name, tail) = (parts.next(), parts.next(), parts.next());
            if what == Some("TYPE") {
                let (name, kind) = (name.expect(line), tail.expect(line));
                let old = out.families.insert(name.to_string(), kind.to_string());
                assert!(old.is_none(), "family {name} declared twice");
            }
            continue;
        }
        let sample = parse_sample(line).unwrap_or_else(|| panic!("bad sample line: {line:?}"));
        let family_ok = out
            .families
            .iter()
            .any(|(f, t)| suffixes(t).iter().any(|s| sample.name == format!("{f}{s}")));
        assert!(family_ok, "sample of no declared family: {line:?}");
        out.samples.push(sample);
    }
    out
}

fn parse_sample(line: &str) -> Option<Sample> {
    let end = line.find(['{', ' '])?;
    let name = &line[..end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find("=\"")?;
            let key = rest[..eq].to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key, value);
            rest = &rest[eq + 2 + close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest.strip_prefix(' ')?.split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_with_escapes_and_checks_families() {
        let s = parse(
            "# TYPE a counter\na_total{k=\"x \\\"y\\\"\",j=\"2\"} 3\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n# EOF\n",
        );
        assert_eq!(s.value("a_total", &[("k", "x \"y\"")]), 3.0);
        assert_eq!(s.count("h_count", &[]), 1);
        assert!(s.queryable_names().contains(&"h_bucket".to_string()));
    }

    #[test]
    #[should_panic(expected = "no declared family")]
    fn a_sample_without_its_type_line_is_refused() {
        parse("a_total 1\n# EOF\n");
    }
}
