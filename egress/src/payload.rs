//! What an alert looks like in an HTTP request body: JSON (the default), XML shaped after the DCC's
//! DUIS alerts, or a user's template with named placeholders — and the request headers, whose
//! values may come from environment variables so that tokens never sit on the command line.
//!
//! Rendering is pure: the same alert, run id and epoch give the same bytes. Times are scenario
//! times anchored at the run's start (`epoch`): at `--time-scale 60` an hour of scenario is a
//! minute of wall time, and the timestamps say the hour.

use bytes::Bytes;
use ledger::{AlertCode, AlertKind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use virtual_hubs::Outbound;
use wire::RunId;

/// Why a payload or header specification is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The template file could not be read.
    #[error("cannot read payload template {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A placeholder the harness does not know.
    #[error(
        "payload template {path}, line {line}: unknown placeholder {{{{{name}}}}} (known: {known})"
    )]
    UnknownPlaceholder {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The name inside the braces.
        name: String,
        /// The names it could have been.
        known: String,
    },
    /// `{{` without its `}}`.
    #[error("payload template {path}, line {line}: '{{{{' without a closing '}}}}'")]
    Unclosed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A `--header` that is not `Name: value`.
    #[error("--header '{0}': expected 'Name: value'")]
    HeaderForm(String),
    /// A header name or value HTTP does not allow.
    #[error("--header '{spec}': {reason}")]
    HeaderInvalid {
        /// The header as given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// `${VAR}` or `env:VAR` naming a variable that is not set.
    #[error("--header '{spec}': environment variable {var} is not set")]
    MissingEnv {
        /// The header as given.
        spec: String,
        /// The variable.
        var: String,
    },
}

/// A field of an alert that a template can place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    AlertId,
    RunId,
    IdempotencyKey,
    AlertCode,
    AlertKind,
    DeviceId,
    DeviceIdHex,
    Region,
    EventTime,
    IntendedSendTime,
    EventMs,
    IntendedSendMs,
    Seq,
}

impl Field {
    const ALL: [(&'static str, Field); 13] = [
        ("alert_id", Field::AlertId),
        ("run_id", Field::RunId),
        ("idempotency_key", Field::IdempotencyKey),
        ("alert_code", Field::AlertCode),
        ("alert_kind", Field::AlertKind),
        ("device_id", Field::DeviceId),
        ("device_id_hex", Field::DeviceIdHex),
        ("region", Field::Region),
        ("event_time", Field::EventTime),
        ("intended_send_time", Field::IntendedSendTime),
        ("event_ms", Field::EventMs),
        ("intended_send_ms", Field::IntendedSendMs),
        ("seq", Field::Seq),
    ];

    fn parse(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The names a template may use, for messages and docs.
    pub fn names() -> String {
        Field::ALL
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Field),
}

/// A parsed `--payload-template`: literal text with `{{name}}` placeholders, inserted verbatim
/// (no escaping: the template decides the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    content_type: String,
}

impl Template {
    /// Reads and parses a template file; the content type follows its extension (`.json`,
    /// `.xml`, else `text/plain`) unless a `Content-Type` header overrides it.
    pub fn load(path: &Path) -> Result<Template, PayloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| PayloadError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let content_type = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => "application/json",
            Some("xml") => "application/xml",
            _ => "text/plain; charset=utf-8",
        };
        Template::parse(&text, path, content_type)
    }

    /// Parses template text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path, content_type: &str) -> Result<Template, PayloadError> {
        let mut segments = Vec::new();
        let mut rest = text;
        let mut consumed = 0;
        while let Some(open) = rest.find("{{") {
            let line = 1 + text[..consumed + open].matches('\n').count();
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(PayloadError::Unclosed {
                    path: path.to_path_buf(),
                    line,
                });
            };
            let name = after[..close].trim();
            let field = Field::parse(name).ok_or_else(|| PayloadError::UnknownPlaceholder {
                path: path.to_path_buf(),
                line,
                name: name.to_string(),
                known: Field::names(),
            })?;
            segments.push(Segment::Field(field));
            let used = open + 2 + close + 2;
            consumed += used;
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        Ok(Template {
            segments,
            content_type: content_type.to_string(),
        })
    }
}

/// The body format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `application/json`, the fields listed in docs/http.md.
    Json,
    /// `application/xml` shaped after a DUIS alert (not validated against the DCC's schema).
    Duis,
    /// A user's template.
    Template(Template),
}

/// Renders alerts into request bodies.
#[derive(Debug, Clone)]
pub struct Payload {
    format: Format,
    run_id: RunId,
    /// `run_id` in hex, formatted once (it is in every body and every key).
    run_hex: String,
    epoch: SystemTime,
}

/// The JSON body (field order is the documented one). Device id and times are written straight
/// into the body ([`Shown`]), without a string of their own: rendering is on the path of every
/// request.
#[derive(Serialize)]
struct JsonAlert<'a> {
    run_id: &'a str,
    alert_id: u64,
    idempotency_key: &'a str,
    alert_code: &'static str,
    alert_kind: &'static str,
    device_id: Shown<Eui64>,
    region: &'static str,
    event_time: Shown<humantime::Rfc3339Timestamp>,
    intended_send_time: Shown<humantime::Rfc3339Timestamp>,
    event_ms: u64,
    intended_send_ms: u64,
    seq: u32,
}

/// A value serialised as the JSON string of its `Display` form.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A device id displayed as an EUI-64 in the DCC's form (see [`eui64`]).
struct Eui64(u64);

impl std::fmt::Display for Eui64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [b'-'; 23];
        for (i, b) in self.0.to_be_bytes().into_iter().enumerate() {
            out[3 * i] = HEX[usize::from(b >> 4)];
            out[3 * i + 1] = HEX[usize::from(b & 0xF)];
        }
        // Only ASCII hex digits and dashes were written.
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

/// The `Idempotency-Key` of an alert: unique per run and alert, the same for every resend.
pub fn idempotency_key(run: &RunId, a: &Outbound) -> String {
    format!("{run}-{}", a.id.0)
}

/// A device id as an EUI-64 in the DCC's form, `00-AB-CD-EF-00-01-23-45`.
pub fn eui64(device: u64) -> String {
    Eui64(device).to_string()
}

/// `POA` or `PRA`.
pub(crate) fn kind_str(code: AlertCode) -> &'static str {
    match code.kind() {
        AlertKind::Poa => "POA",
        AlertKind::Pra => "PRA",
    }
}

impl Payload {
    /// A renderer for `run_id`, scenario time 0 being `epoch`.
    pub fn new(format: Format, run_id: RunId, epoch: SystemTime) -> Self {
        Payload {
            format,
            run_id,
            run_hex: run_id.to_string(),
            epoch,
        }
    }

    /// The `Content-Type` of the bodies.
    pub fn content_type(&self) -> &str {
        match &self.format {
            Format::Json => "application/json",
            Format::Duis => "application/xml",
            Format::Template(t) => &t.content_type,
        }
    }

    /// The run id.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    fn stamp(&self, scenario_ms: u64) -> humantime::Rfc3339Timestamp {
        humantime::format_rfc3339_millis(self.epoch + Duration::from_millis(scenario_ms))
    }

    fn time(&self, scenario_ms: u64) -> String {
        self.stamp(scenario_ms).to_string()
    }

    /// The `Idempotency-Key` of an alert (see [`idempotency_key`]).
    pub fn key(&self, a: &Outbound) -> String {
        use std::fmt::Write as _;
        let mut key = String::with_capacity(self.run_hex.len() + 21);
        key.push_str(&self.run_hex);
        // Writing to a String cannot fail.
        let _ = write!(key, "-{}", a.id.0);
        key
    }

    /// The body of one alert.
    pub fn render(&self, a: &Outbound) -> Bytes {
        self.render_keyed(a, &self.key(a))
    }

    /// The body of one alert whose [`Payload::key`] the caller already has (it is also a header).
    pub fn render_keyed(&self, a: &Outbound, key: &str) -> Bytes {
        match &self.format {
            Format::Json => {
                let body = JsonAlert {
                    run_id: &self.run_hex,
                    alert_id: a.id.0,
                    idempotency_key: key,
                    alert_code: a.code.as_str(),
                    alert_kind: kind_str(a.code),
                    device_id: Shown(Eui64(a.device_id)),
                    region: a.region.as_str(),
                    event_time: Shown(self.stamp(a.event_ms)),
                    intended_send_time: Shown(self.stamp(a.exit_ms)),
                    event_ms: a.event_ms,
                    intended_send_ms: a.exit_ms,
                    seq: a.seq,
                };
                // A JSON alert is about 360 bytes: one allocation, no regrowth.
                let mut out = Vec::with_capacity(512);
                // Serialising a struct of strings and integers into memory cannot fail.
                let _ = serde_json::to_writer(&mut out, &body);
                Bytes::from(out)
            }
            Format::Duis => Bytes::from(self.duis(a, key)),
            Format::Template(t) => {
                let mut out = String::with_capacity(256);
                for s in &t.segments {
                    match s {
                        Segment::Text(x) => out.push_str(x),
                        Segment::Field(f) => out.push_str(&self.field(*f, a, key)),
                    }
                }
                Bytes::from(out)
            }
        }
    }

    fn field(&self, f: Field, a: &Outbound, key: &str) -> String {
        match f {
            Field::AlertId => a.id.0.to_string(),
            Field::RunId => self.run_hex.clone(),
            Field::IdempotencyKey => key.to_string(),
            Field::AlertCode => a.code.as_str().to_string(),
            Field::AlertKind => kind_str(a.code).to_string(),
            Field::DeviceId => eui64(a.device_id),
            Field::DeviceIdHex => format!("{:016x}", a.device_id),
            Field::Region => a.region.as_str().to_string(),
            Field::EventTime => self.time(a.event_ms),
            Field::IntendedSendTime => self.time(a.exit_ms),
            Field::EventMs => a.event_ms.to_string(),
            Field::IntendedSendMs => a.exit_ms.to_string(),
            Field::Seq => a.seq.to_string(),
        }
    }

    /// An XML alert shaped after the DCC User Interface Specification's alert messages: a
    /// `DCCAlertMessage` for AD1 (the DCC's power outage alert), a `DeviceAlertMessage` for
    /// 8F35/8F36 (device restoration alerts), with the harness's own fields in a `csp` namespace.
    /// Shaped after, not validated against the official schema.
    fn duis(&self, a: &Outbound, key: &str) -> String {
        let (message, code_el) = match a.code {
            AlertCode::Ad1 => ("DCCAlertMessage", "DCCAlertCode"),
            _ => ("DeviceAlertMessage", "AlertCode"),
        };
        let region = xml_escape(a.region.as_str());
        format!(
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<sr:ResponseMessage xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" ",
                "xmlns:csp=\"urn:csp-loadtest:alert\" schemaVersion=\"5.1\">\n",
                "  <sr:Header>\n",
                "    <sr:RequestID>{device}:{key}</sr:RequestID>\n",
                "    <sr:ResponseDateTime>{sent}</sr:ResponseDateTime>\n",
                "  </sr:Header>\n",
                "  <sr:Body>\n",
                "    <sr:{message}>\n",
                "      <sr:{code_el}>{code}</sr:{code_el}>\n",
                "      <sr:DeviceID>{device}</sr:DeviceID>\n",
                "      <sr:EventDateTime>{event}</sr:EventDateTime>\n",
                "    </sr:{message}>\n",
                "  </sr:Body>\n",
                "  <csp:Alert>\n",
                "    <csp:RunID>{run}</csp:RunID>\n",
                "    <csp:AlertID>{id}</csp:AlertID>\n",
                "    <csp:AlertCode>{code}</csp:AlertCode>\n",
                "    <csp:DeviceID>{device}</csp:DeviceID>\n",
                "    <csp:Region>{region}</csp:Region>\n",
                "    <csp:EventMs>{event_ms}</csp:EventMs>\n",
                "    <csp:IntendedSendMs>{exit_ms}</csp:IntendedSendMs>\n",
                "    <csp:Seq>{seq}</csp:Seq>\n",
                "  </csp:Alert>\n",
                "</sr:ResponseMessage>\n"
            ),
            device = eui64(a.device_id),
            key = key,
            sent = self.time(a.exit_ms),
            message = message,
            code_el = code_el,
            code = a.code.as_str(),
            event = self.time(a.event_ms),
            run = self.run_id,
            id = a.id.0,
            region = region,
            event_ms = a.event_ms,
            exit_ms = a.exit_ms,
            seq = a.seq,
        )
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Parses a `--header 'Name: value'`, expanding `${VAR}` anywhere in the value, or a whole value
/// of the form `env:VAR`, from `env` (the process environment in practice). A variable that is
/// not set is an error naming it; the expanded value is never printed.
pub fn parse_header(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(http::HeaderName, http::HeaderValue), PayloadError> {
    let (name, value) = spec
        .split_once(':')
        .ok_or_else(|| PayloadError::HeaderForm(spec.to_string()))?;
    let name = name.trim();
    let value = value.trim();
    let invalid = |reason: String| PayloadError::HeaderInvalid {
        spec: redact(spec),
        reason,
    };
    let name = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid(format!("'{name}' is not a valid header name")))?;
    let missing = |var: &str| PayloadError::MissingEnv {
        spec: redact(spec),
        var: var.to_string(),
    };
    let expanded = if let Some(var) = value.strip_prefix("env:") {
        env(var.trim()).ok_or_else(|| missing(var.trim()))?
    } else {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid("'${' without a closing '}'".into()))?;
            let var = &after[..end];
            out.push_str(&env(var).ok_or_else(|| missing(var))?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    };
    let mut value = http::HeaderValue::from_str(&expanded)
        .map_err(|_| invalid("the value has characters a header cannot carry".into()))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// The header as given, safe to print: it is the form with `${VAR}`, never the expanded secret;
/// a literal value after `Authorization:` is masked.
fn redact(spec: &str) -> String {
    match spec.split_once(':') {
        Some((n, v))
            if n.trim().eq_ignore_ascii_case("authorization")
                && !v.contains("${")
                && !v.trim().starts_with("env:") =>
        {
            format!("{n}: ***")
        }
        _ => spec.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ledger::{AlertId, Region};

    fn alert() -> Outbound {
        Outbound {
            id: AlertId::new(42, AlertKind::Pra),
            code: AlertCode::Restored8F36,
            device_id: 0x00AB_CDEF_0001_2345,
            region: Region::CENTRAL_SOUTH,
            region_code: 2,
            event_ms: 180_000,
            seq: 2,
            exit_ms: 185_500,
        }
    }

    fn payload(f: Format) -> Payload {
        Payload::new(
            f,
            RunId([0xAB; 16]),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn json_carries_every_documented_field() {
        let body = payload(Format::Json).render(&alert());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["run_id"], "ab".repeat(16));
        assert_eq!(v["alert_id"], 85);
        assert_eq!(v["idempotency_key"], format!("{}-85", "ab".repeat(16)));
        assert_eq!(v["alert_code"], "8F36");
        assert_eq!(v["alert_kind"], "PRA");
        assert_eq!(v["device_id"], "00-AB-CD-EF-00-01-23-45");
        assert_eq!(v["region"], "central-south");
        assert_eq!(v["event_time"], "2023-11-14T22:16:20.000Z");
        assert_eq!(v["intended_send_time"], "2023-11-14T22:16:25.500Z");
        assert_eq!(v["seq"], 2);
    }

    #[test]
    fn json_is_compact_in_the_documented_field_order() {
        let body = payload(Format::Json).render(&alert());
        let run = "ab".repeat(16);
        let expected = format!(
            "{{\"run_id\":\"{run}\",\"alert_id\":85,\"idempotency_key\":\"{run}-85\",\
             \"alert_code\":\"8F36\",\"alert_kind\":\"PRA\",\"device_id\":\"00-AB-CD-EF-00-01-23-45\",\
             \"region\":\"central-south\",\"event_time\":\"2023-11-14T22:16:20.000Z\",\
             \"intended_send_time\":\"2023-11-14T22:16:25.500Z\",\"event_ms\":180000,\
             \"intended_send_ms\":185500,\"seq\":2}}"
        );
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
        assert_eq!(eui64(0), "00-00-00-00-00-00-00-00");
        assert_eq!(eui64(u64::MAX), "FF-FF-FF-FF-FF-FF-FF-FF");
        assert_eq!(eui64(0x0123_4567_89AB_CDEF), "01-23-45-67-89-AB-CD-EF");
    }

    #[test]
    fn duis_is_well_formed_xml_with_the_alert_code() {
        let body = payload(Format::Duis).render(&alert());
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("<sr:DeviceAlertMessage>"), "{text}");
        assert!(text.contains("<sr:AlertCode>8F36</sr:AlertCode>"), "{text}");
        assert!(
            text.contains("<csp:Region>central-south</csp:Region>"),
            "{text}"
        );
        let mut poa = alert();
        poa.code = AlertCode::Ad1;
        let body = payload(Format::Duis).render(&poa);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<sr:DCCAlertCode>AD1</sr:DCCAlertCode>"),
            "{text}"
        );
    }

    #[test]
    fn templates_fill_placeholders_and_name_unknown_ones() {
        let t = Template::parse(
            "id={{alert_id}} key={{ idempotency_key }}\nat {{event_time}}.",
            Path::new("t.txt"),
            "text/plain",
        )
        .unwrap();
        let body = payload(Format::Template(t)).render(&alert());
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            format!(
                "id=85 key={}-85\nat 2023-11-14T22:16:20.000Z.",
                "ab".repeat(16)
            )
        );
        let e = Template::parse("a\nb {{alert_idd}}", Path::new("my.json"), "x").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("my.json") && msg.contains("line 2") && msg.contains("{{alert_idd}}"),
            "{msg}"
        );
        assert!(Template::parse("{{seq", Path::new("u"), "x").is_err());
    }

    #[test]
    fn headers_take_values_from_the_environment_without_echoing_them() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        let (n, v) = parse_header("Authorization: Bearer ${TOKEN}", env).unwrap();
        assert_eq!(
            (n.as_str(), v.to_str().unwrap()),
            ("authorization", "Bearer s3cret")
        );
        assert!(v.is_sensitive());
        let (_, v) = parse_header("X-Api-Key: env:TOKEN", env).unwrap();
        assert_eq!(v.to_str().unwrap(), "s3cret");
        let e = parse_header("X-Api-Key: ${NOPE}", env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NOPE") && !e.contains("s3cret"), "{e}");
        assert!(parse_header("no colon", env).is_err());
        assert!(parse_header("Bad Name: x", env).is_err());
        let e = parse_header("Authorization: Bearer literal\u{7f}", env)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("literal"), "{e}");
    }
}
