//! Writing metrics out in the Prometheus text formats, read from their sources at scrape time.
//!
//! A program describes each metric once, as a [`MetricDef`] (name, type, unit, label names, help)
//! in a catalogue it can also document and test against. A [`Source`] is asked for its values on
//! every scrape and writes them through an [`Exposition`], which only accepts values shaped like
//! their definition (a counter's label values for its label names, ...). The text itself —
//! OpenMetrics 1.0 or the Prometheus 0.0.4 format, escaping, `_total`/`_bucket` suffixes, `# EOF` —
//! is `prometheus-client`'s; nothing here formats a sample by hand.
//!
//! Reading on scrape means the instrumented code keeps its own counters as it always did and pays
//! nothing for being observed; a scrape costs whatever its sources' reads cost.

use crate::histogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use std::fmt;
use std::sync::Arc;

/// What kind of metric a [`MetricDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever grows (exposed with `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, count and sum (exposed as `_bucket`, `_count`, `_sum`).
    Histogram,
    /// Constant labels describing the target, value 1 (exposed with `_info`).
    Info,
}

impl MetricKind {
    /// The name the catalogue and the docs use (the OpenMetrics type name).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Info => "info",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
            MetricKind::Histogram => MetricType::Histogram,
            MetricKind::Info => MetricType::Info,
        }
    }
}

/// The base unit a metric's values are in (and its name ends with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
}

impl MetricUnit {
    fn unit(self) -> &'static Unit {
        // Statics: the encoder borrows the unit for as long as it writes the metric's samples.
        static SECONDS: Unit = Unit::Seconds;
        static BYTES: Unit = Unit::Bytes;
        match self {
            MetricUnit::Seconds => &SECONDS,
            MetricUnit::Bytes => &BYTES,
        }
    }

    /// The name suffix, e.g. `seconds`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricUnit::Seconds => "seconds",
            MetricUnit::Bytes => "bytes",
        }
    }
}

/// One metric's definition: what a catalogue lists, the docs show and a source writes values for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// Name without the unit and without the type's suffixes (`csp_alerts_delivered`).
    pub base: &'static str,
    /// Counter, gauge, histogram or info.
    pub kind: MetricKind,
    /// The unit, appended to the name (`csp_scenario_time` + seconds).
    pub unit: Option<MetricUnit>,
    /// Label names, in the order a source gives their values.
    pub labels: &'static [&'static str],
    /// One line saying what it measures.
    pub help: &'static str,
}

impl MetricDef {
    /// A counter.
    pub const fn counter(
        base: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            base,
            kind: MetricKind::Counter,
            unit: None,
            labels,
            help,
        }
    }

    /// A gauge.
    pub const fn gauge(
        base: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            base,
            kind: MetricKind::Gauge,
            unit: None,
            labels,
            help,
        }
    }

    /// A histogram.
    pub const fn histogram(
        base: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            base,
            kind: MetricKind::Histogram,
            unit: None,
            labels,
            help,
        }
    }

    /// An info metric (constant labels describing the target).
    pub const fn info(
        base: &'static str,
        labels: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        MetricDef {
            base,
            kind: MetricKind::Info,
            unit: None,
            labels,
            help,
        }
    }

    /// The same metric, in `unit`.
    pub const fn in_unit(mut self, unit: MetricUnit) -> Self {
        self.unit = Some(unit);
        self
    }

    /// The family's name: the base and the unit (`csp_scenario_time_seconds`).
    pub fn family(&self) -> String {
        match self.unit {
            Some(u) => format!("{}_{}", self.base, u.as_str()),
            None => self.base.to_string(),
        }
    }

    /// The names of the samples it is exposed as (what a query names): `_total` for a counter,
    /// `_bucket`, `_count`, `_sum` for a histogram, `_info` for an info metric.
    pub fn sample_names(&self) -> Vec<String> {
        let f = self.family();
        match self.kind {
            MetricKind::Counter => vec![format!("{f}_total")],
            MetricKind::Gauge => vec![f],
            MetricKind::Histogram => ["bucket", "count", "sum"]
                .iter()
                .map(|s| format!("{f}_{s}"))
                .collect(),
            MetricKind::Info => vec![format!("{f}_info")],
        }
    }
}

/// Something that writes its current values on every scrape.
pub trait Source: Send + Sync + 'static {
    /// Writes every metric this source owns, once each.
    fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result;
}

/// The writer a [`Source`] is given: one call per metric, with every sample of it.
#[derive(Debug)]
pub struct Exposition<'a> {
    enc: DescriptorEncoder<'a>,
}

impl Exposition<'_> {
    /// A counter's samples: label values (one per label name of `def`) and value.
    pub fn counter<L: AsRef<[S]>, S: AsRef<str>>(
        &mut self,
        def: &MetricDef,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) -> fmt::Result {
        self.each(def, MetricKind::Counter, samples, |m, v| {
            ConstCounter::new(*v).encode(m)
        })
    }

    /// A gauge's samples.
    pub fn gauge<L: AsRef<[S]>, S: AsRef<str>>(
        &mut self,
        def: &MetricDef,
        samples: impl IntoIterator<Item = (L, f64)>,
    ) -> fmt::Result {
        self.each(def, MetricKind::Gauge, samples, |m, v| {
            ConstGauge::new(*v).encode(m)
        })
    }

    /// A histogram's samples.
    pub fn histogram<'h, L: AsRef<[S]>, S: AsRef<str>>(
        &mut self,
        def: &MetricDef,
        samples: impl IntoIterator<Item = (L, &'h Histogram)>,
    ) -> fmt::Result {
        self.each(def, MetricKind::Histogram, samples, |mut m, h| {
            m.encode_histogram::<NoLabelSet>(h.sum(), h.count(), &h.buckets(), None)
        })
    }

    /// An info metric: its label values.
    pub fn info<S: AsRef<str>>(&mut self, def: &MetricDef, values: &[S]) -> fmt::Result {
        let labels = label_set(def, values)?;
        self.descriptor(def, MetricKind::Info)?.encode_info(&labels)
    }

    /// The `# HELP`/`# TYPE`/`# UNIT` lines; refuses a definition of another kind.
    fn descriptor(
        &mut self,
        def: &MetricDef,
        kind: MetricKind,
    ) -> Result<MetricEncoder<'_>, fmt::Error> {
        if def.kind != kind {
            return Err(fmt::Error);
        }
        let unit = def.unit.map(MetricUnit::unit);
        self.enc
            .encode_descriptor(def.base, def.help, unit, kind.metric_type())
    }

    /// The descriptor, then one sample (or sample group) per label-value set.
    fn each<L: AsRef<[S]>, S: AsRef<str>, V>(
        &mut self,
        def: &MetricDef,
        kind: MetricKind,
        samples: impl IntoIterator<Item = (L, V)>,
        mut write: impl FnMut(MetricEncoder<'_>, &V) -> fmt::Result,
    ) -> fmt::Result {
        let mut m = self.descriptor(def, kind)?;
        for (values, v) in samples {
            let labels = label_set(def, values.as_ref())?;
            write(m.encode_family(&labels)?, &v)?;
        }
        Ok(())
    }
}

/// `(name, value)` pairs for `values`, one per label name of `def`: a value missing or extra is an
/// error, never a sample with a wrong label.
fn label_set<'v, S: AsRef<str>>(
    def: &MetricDef,
    values: &'v [S],
) -> Result<Vec<(&'static str, &'v str)>, fmt::Error> {
    if values.len() != def.labels.len() {
        return Err(fmt::Error);
    }
    Ok(def
        .labels
        .iter()
        .copied()
        .zip(values.iter().map(AsRef::as_ref))
        .collect())
}

/// Wraps a [`Source`] as a `prometheus-client` collector.
struct SourceCollector(Arc<dyn Source>);

impl fmt::Debug for SourceCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceCollector")
    }
}

impl Collector for SourceCollector {
    fn encode(&self, enc: DescriptorEncoder) -> fmt::Result {
        self.0.collect(&mut Exposition { enc })
    }
}

/// Which text format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for first).
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (for clients that do not ask for OpenMetrics).
    Prometheus,
}

impl Format {
    /// OpenMetrics if the HTTP `Accept` header asks for it, the Prometheus text format otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The sources of one exporter, rendered together on every scrape.
#[derive(Debug, Default)]
pub struct Registry {
    inner: prometheus_client::registry::Registry,
}

impl Registry {
    /// Adds a source; its metrics follow those of the sources added before it.
    pub fn add(&mut self, source: Arc<dyn Source>) {
        self.inner
            .register_collector(Box::new(SourceCollector(source)));
    }

    /// Every source's current values, in `format`. A source that fails to write is a bug (a value
    /// that does not fit its definition), reported as an error rather than a partial page.
    pub fn render(&self, format: Format) -> Result<String, fmt::Error> {
        let mut out = String::new();
        match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.inner)?
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner)?
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERED: MetricDef =
        MetricDef::counter("t_alerts_delivered", &["kind"], "Alerts delivered.");
    const CLOCK: MetricDef =
        MetricDef::gauge("t_clock", &[], "Scenario time.").in_unit(MetricUnit::Seconds);
    const LAG: MetricDef =
        MetricDef::histogram("t_lag", &["kind"], "Lag.").in_unit(MetricUnit::Seconds);
    const RUN: MetricDef = MetricDef::info("t_run", &["profile"], "The run.");

    struct Fixed;

    impl Source for Fixed {
        fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result {
            out.info(&RUN, &["north \"current\""])?;
            out.counter(&DELIVERED, [(["poa"], 3), (["pra"], 0)])?;
            out.gauge(&CLOCK, [([] as [&str; 0], 12.5)])?;
            let mut h = Histogram::new(&[0.5, 1.0]);
            h.observe(0.25);
            h.observe(2.0);
            out.histogram(&LAG, [(["poa"], &h)])
        }
    }

    fn registry(s: impl Source) -> Registry {
        let mut r = Registry::default();
        r.add(Arc::new(s));
        r
    }

    #[test]
    fn openmetrics_text_has_types_units_suffixes_escapes_and_eof() {
        let text = registry(Fixed).render(Format::OpenMetrics).unwrap();
        for line in [
            "# TYPE t_run info",
            "t_run_info{profile=\"north \\\"current\\\"\"} 1",
            "# TYPE t_alerts_delivered counter",
            "t_alerts_delivered_total{kind=\"poa\"} 3",
            "t_alerts_delivered_total{kind=\"pra\"} 0",
            "# TYPE t_clock_seconds gauge",
            "# UNIT t_clock_seconds seconds",
            "t_clock_seconds 12.5",
            "# TYPE t_lag_seconds histogram",
            "t_lag_seconds_count{kind=\"poa\"} 2",
            "t_lag_seconds_bucket{le=\"0.5\",kind=\"poa\"} 1",
            "t_lag_seconds_bucket{le=\"1.0\",kind=\"poa\"} 1",
            "t_lag_seconds_bucket{le=\"+Inf\",kind=\"poa\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn prometheus_text_is_served_to_clients_that_do_not_ask_for_openmetrics() {
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        let prom = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        let text = registry(Fixed).render(Format::Prometheus).unwrap();
        assert!(
            text.contains("# TYPE t_alerts_delivered_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("t_alerts_delivered_total{kind=\"poa\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn values_that_do_not_fit_their_definition_are_refused() {
        struct WrongLabels;
        impl Source for WrongLabels {
            fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result {
                out.counter(&DELIVERED, [(["poa", "extra"], 1)])
            }
        }
        struct WrongKind;
        impl Source for WrongKind {
            fn collect(&self, out: &mut Exposition<'_>) -> fmt::Result {
                out.gauge(&DELIVERED, [(["poa"], 1.0)])
            }
        }
        assert!(registry(WrongLabels).render(Format::OpenMetrics).is_err());
        assert!(registry(WrongKind).render(Format::OpenMetrics).is_err());
    }

    #[test]
    fn sample_names_are_what_queries_name() {
        assert_eq!(DELIVERED.sample_names(), ["t_alerts_delivered_total"]);
        assert_eq!(CLOCK.sample_names(), ["t_clock_seconds"]);
        assert_eq!(
            LAG.sample_names(),
            [
                "t_lag_seconds_bucket",
                "t_lag_seconds_count",
                "t_lag_seconds_sum"
            ]
        );
        assert_eq!(RUN.sample_names(), ["t_run_info"]);
    }
}
