//! The `csp-alert/2` wire protocol: frame types, their byte layout, and a sans-IO decoder.
//!
//! Both ends of the QUIC connection (the harness's egress and the reference ingest endpoint) speak
//! length-prefixed frames on long-lived bidirectional streams; `docs/protocol.md` is the normative
//! description and this module is its reference implementation.
//!
//! Every frame is `len: u32 BE | type: u8 | body`, where `len` counts the type byte and the body.
//! The [`Decoder`] checks `len` against its limit *before* it buffers a frame's body, never panics on
//! any input, and never holds more than one partial frame plus the last chunk it was given.
//!
//! This module does no I/O and never reads a clock.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ledger::{AlertCode, Region};

/// ALPN protocol id negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"csp-alert/2";
/// Protocol version carried in HELLO (2: HELLO carries the run id and starts every stream;
/// DUPLICATE frames).
pub const PROTOCOL_VERSION: u16 = 2;
/// Length of a run id.
pub const RUN_ID_LEN: usize = 16;
/// Largest frame accepted: `len` (type byte + body) may not exceed this.
pub const MAX_FRAME_LEN: usize = 4096;
/// Bytes before the body: the 4-byte length and the type byte.
pub const HEADER_LEN: usize = 5;
/// Fixed part of an ALERT body (everything but the payload bytes).
pub const ALERT_FIXED_LEN: usize = 8 + 2 + 8 + 1 + 8 + 4 + 2;
/// Fixed part of a HELLO body: version (2 bytes), run id, token length (2).
const HELLO_FIXED_LEN: usize = 2 + RUN_ID_LEN + 2;
// Fixed parts of the REJECT body (alert id 8 bytes, reason 2, text length 2) and the ERROR body
// (code 2, text length 2), written as totals: as sums, `2 + 2` and `2 * 2` would be the same
// number, which no test can tell apart.
const REJECT_FIXED_LEN: usize = 12;
const ERROR_FIXED_LEN: usize = 4;
/// Most payload bytes an ALERT frame can carry within [`MAX_FRAME_LEN`].
pub const MAX_PAYLOAD_LEN: usize = MAX_FRAME_LEN - 1 - ALERT_FIXED_LEN;
/// Most alert ids in one ACK or DUPLICATE frame.
pub const MAX_ACK_IDS: usize = (MAX_FRAME_LEN - 1 - 2) / 8;
/// Most bytes of reason/error text (UTF-8).
pub const MAX_TEXT_LEN: usize = 256;
/// Most bytes of a HELLO auth token.
pub const MAX_TOKEN_LEN: usize = 512;
/// Size of the synthetic GBCS payload the harness sends (an 8F36 payload is about 152 bytes).
pub const SYNTHETIC_PAYLOAD_LEN: usize = 152;

/// Frame type bytes.
pub mod frame_type {
    /// HELLO: protocol version, run id and auth token (client → endpoint), first on every stream.
    pub const HELLO: u8 = 0x01;
    /// ALERT: one alert (client → endpoint).
    pub const ALERT: u8 = 0x02;
    /// ACK: alert ids stored durably (endpoint → client).
    pub const ACK: u8 = 0x03;
    /// REJECT: one alert refused, with a reason (endpoint → client).
    pub const REJECT: u8 = 0x04;
    /// ERROR: the stream is unusable and is being closed (either direction).
    pub const ERROR: u8 = 0x05;
    /// DUPLICATE: alert ids stored before for this run; acknowledged, not stored again
    /// (endpoint → client).
    pub const DUPLICATE: u8 = 0x06;
}

/// A run id: 128 random bits that scope alert ids to one run, so an endpoint that lives across
/// runs de-duplicates by (run, alert) and never mistakes a new run's alert for a resend.
/// Written as 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RunId(pub [u8; RUN_ID_LEN]);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Why a run id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a run id (32 hex digits)")]
pub struct BadRunId(pub String);

impl std::str::FromStr for RunId {
    type Err = BadRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRunId(s.chars().take(64).collect());
        // Hex digits only: `from_str_radix` alone also takes a sign, so "+f+f…" would read as a
        // run id that is not written that way anywhere.
        if s.len() != 2 * RUN_ID_LEN || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; RUN_ID_LEN];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(RunId(out))
    }
}

/// Reasons an endpoint rejects a well-formed ALERT (the REJECT frame's `reason` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RejectReason {
    /// The alert code is not one the endpoint accepts.
    UnknownCode = 1,
    /// The region byte is not a known CSP region.
    UnknownRegion = 2,
    /// The payload exceeds the endpoint's payload limit.
    PayloadTooLarge = 3,
    /// The endpoint could not store the alert (it was not acknowledged).
    StorageFailure = 4,
    /// The endpoint's policy refuses the alert (e.g. a test endpoint that rejects everything).
    Policy = 5,
    /// Any other reason the endpoint chooses to report.
    Other = 0xFFFF,
}

impl RejectReason {
    /// The wire value.
    pub fn wire(self) -> u16 {
        self as u16
    }

    /// Parses a wire value; unknown values map to [`RejectReason::Other`].
    pub fn from_wire(v: u16) -> Self {
        match v {
            1 => RejectReason::UnknownCode,
            2 => RejectReason::UnknownRegion,
            3 => RejectReason::PayloadTooLarge,
            4 => RejectReason::StorageFailure,
            5 => RejectReason::Policy,
            _ => RejectReason::Other,
        }
    }
}

/// Stream-level error codes (the ERROR frame's `code`, also used as the QUIC stream reset /
/// stop-sending application error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// A frame could not be parsed (bad length, bad field, bad UTF-8).
    Malformed = 1,
    /// A frame's length exceeds the limit.
    Oversized = 2,
    /// The frame type is unknown.
    UnknownFrameType = 3,
    /// The stream did not authenticate (missing or wrong HELLO token).
    Unauthenticated = 4,
    /// A frame that is valid but not allowed in this direction or at this point.
    UnexpectedFrame = 5,
    /// The stream stalled part-way through a frame for too long.
    Timeout = 6,
    /// The HELLO version is not supported.
    UnsupportedVersion = 7,
    /// The endpoint failed internally.
    Internal = 8,
    /// Any other code.
    Other = 0xFFFF,
}

impl ErrorCode {
    /// The wire value.
    pub fn wire(self) -> u16 {
        self as u16
    }

    /// Parses a wire value; unknown values map to [`ErrorCode::Other`].
    pub fn from_wire(v: u16) -> Self {
        match v {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::Oversized,
            3 => ErrorCode::UnknownFrameType,
            4 => ErrorCode::Unauthenticated,
            5 => ErrorCode::UnexpectedFrame,
            6 => ErrorCode::Timeout,
            7 => ErrorCode::UnsupportedVersion,
            8 => ErrorCode::Internal,
            _ => ErrorCode::Other,
        }
    }
}

/// HELLO: the first frame of every stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u16,
    /// The run the alerts of this stream belong to.
    pub run_id: RunId,
    /// Opaque auth token (may be empty).
    pub token: Bytes,
}

/// The fixed fields of an ALERT frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertHeader {
    /// Run-unique alert id.
    pub alert_id: u64,
    /// GBCS alert code wire value (see [`AlertCode::wire`]); not validated by the decoder.
    pub code: u16,
    /// Device id (EUI-64).
    pub device_id: u64,
    /// Region wire value (the profile's `region.code`, see [`Region::from_wire`]); not validated by the decoder.
    pub region: u8,
    /// Scenario time of the event the alert reports, ms.
    pub event_ms: u64,
    /// Per-device sequence number.
    pub seq: u32,
}

impl AlertHeader {
    /// The alert code, if known.
    pub fn alert_code(&self) -> Option<AlertCode> {
        AlertCode::from_wire(self.code)
    }

    /// The region, if known.
    pub fn region(&self) -> Option<Region> {
        Region::from_wire(self.region)
    }
}

/// ALERT: one alert and its opaque GBCS payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The fixed fields.
    pub header: AlertHeader,
    /// Opaque payload bytes.
    pub payload: Bytes,
}

/// REJECT: the endpoint refuses one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The alert refused.
    pub alert_id: u64,
    /// Why, as a wire value (see [`RejectReason`]).
    pub reason: u16,
    /// Human-readable text (UTF-8, at most [`MAX_TEXT_LEN`] bytes).
    pub text: String,
}

/// ERROR: the sender is closing this stream because of `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// Error code wire value (see [`ErrorCode`]).
    pub code: u16,
    /// Human-readable text (UTF-8, at most [`MAX_TEXT_LEN`] bytes).
    pub text: String,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// HELLO.
    Hello(Hello),
    /// ALERT.
    Alert(Alert),
    /// ACK with 1..=[`MAX_ACK_IDS`] alert ids.
    Ack(Vec<u64>),
    /// DUPLICATE with 1..=[`MAX_ACK_IDS`] alert ids.
    Duplicate(Vec<u64>),
    /// REJECT.
    Reject(Reject),
    /// ERROR.
    Error(ErrorFrame),
}

/// Why bytes could not be decoded into a frame. After any of these the stream is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix exceeds the limit (checked before anything is buffered).
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    Oversized {
        /// Declared length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A zero length prefix: there is no type byte.
    #[error("empty frame (length 0)")]
    Empty,
    /// The type byte is not a known frame type.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The body's length does not match what its fields declare.
    #[error("malformed {frame} frame: {what}")]
    Malformed {
        /// Frame type name.
        frame: &'static str,
        /// What is wrong.
        what: &'static str,
    },
    /// A text field is not UTF-8.
    #[error("{frame} frame text is not valid UTF-8")]
    BadUtf8 {
        /// Frame type name.
        frame: &'static str,
    },
    /// The stream ended part-way through a frame.
    #[error("stream ended part-way through a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the partial frame.
        buffered: usize,
    },
}

impl WireError {
    /// The ERROR-frame code that reports this error to the peer.
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::Oversized { .. } => ErrorCode::Oversized,
            WireError::UnknownType(_) => ErrorCode::UnknownFrameType,
            _ => ErrorCode::Malformed,
        }
    }
}

impl Frame {
    /// How many bytes [`Frame::encode`] appends, headers included: after the encoder has cut
    /// over-long fields, and for ACK and DUPLICATE over every frame the ids take (none for no ids).
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Hello(h) => HEADER_LEN + HELLO_FIXED_LEN + head(&h.token, MAX_TOKEN_LEN).len(),
            Frame::Alert(a) => {
                HEADER_LEN + ALERT_FIXED_LEN + head(&a.payload, MAX_PAYLOAD_LEN).len()
            }
            Frame::Ack(ids) | Frame::Duplicate(ids) => ids
                .chunks(MAX_ACK_IDS)
                .map(|chunk| HEADER_LEN + 2 + 8 * chunk.len())
                .sum(),
            Frame::Reject(r) => {
                HEADER_LEN + REJECT_FIXED_LEN + truncate_utf8(&r.text, MAX_TEXT_LEN).len()
            }
            Frame::Error(e) => {
                HEADER_LEN + ERROR_FIXED_LEN + truncate_utf8(&e.text, MAX_TEXT_LEN).len()
            }
        }
    }

    /// Appends the encoded frame to `dst`.
    ///
    /// Callers keep fields within the limits (payload ≤ [`MAX_PAYLOAD_LEN`], ≤ [`MAX_ACK_IDS`]
    /// ids, text ≤ [`MAX_TEXT_LEN`], token ≤ [`MAX_TOKEN_LEN`]); an over-long payload, text or
    /// token is cut here and more ids go in further frames (no ids, no frame), so what is written
    /// always decodes.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Hello(h) => encode_hello(dst, h.version, &h.run_id, &h.token),
            Frame::Alert(a) => encode_alert(dst, &a.header, &a.payload),
            Frame::Ack(ids) => encode_ack(dst, ids),
            Frame::Duplicate(ids) => encode_duplicate(dst, ids),
            Frame::Reject(r) => encode_reject(dst, r.alert_id, r.reason, &r.text),
            Frame::Error(e) => encode_error(dst, e.code, &e.text),
        }
    }
}

fn put_header(dst: &mut BytesMut, ty: u8, body_len: usize) {
    dst.reserve(HEADER_LEN + body_len);
    dst.put_u32((body_len + 1) as u32);
    dst.put_u8(ty);
}

/// Appends a HELLO frame (the token is truncated to [`MAX_TOKEN_LEN`]).
pub fn encode_hello(dst: &mut BytesMut, version: u16, run_id: &RunId, token: &[u8]) {
    let token = head(token, MAX_TOKEN_LEN);
    put_header(dst, frame_type::HELLO, HELLO_FIXED_LEN + token.len());
    dst.put_u16(version);
    dst.put_slice(&run_id.0);
    dst.put_u16(token.len() as u16);
    dst.put_slice(token);
}

/// Appends an ALERT frame (the payload is truncated to [`MAX_PAYLOAD_LEN`]).
pub fn encode_alert(dst: &mut BytesMut, h: &AlertHeader, payload: &[u8]) {
    let payload = head(payload, MAX_PAYLOAD_LEN);
    put_header(dst, frame_type::ALERT, ALERT_FIXED_LEN + payload.len());
    dst.put_u64(h.alert_id);
    dst.put_u16(h.code);
    dst.put_u64(h.device_id);
    dst.put_u8(h.region);
    dst.put_u64(h.event_ms);
    dst.put_u32(h.seq);
    dst.put_u16(payload.len() as u16);
    dst.put_slice(payload);
}

/// Appends as many ACK frames as needed to carry `ids` ([`MAX_ACK_IDS`] per frame).
pub fn encode_ack(dst: &mut BytesMut, ids: &[u64]) {
    encode_ids(dst, frame_type::ACK, ids);
}

/// Appends as many DUPLICATE frames as needed to carry `ids` ([`MAX_ACK_IDS`] per frame).
pub fn encode_duplicate(dst: &mut BytesMut, ids: &[u64]) {
    encode_ids(dst, frame_type::DUPLICATE, ids);
}

fn encode_ids(dst: &mut BytesMut, ty: u8, ids: &[u64]) {
    for chunk in ids.chunks(MAX_ACK_IDS) {
        put_header(dst, ty, 2 + 8 * chunk.len());
        dst.put_u16(chunk.len() as u16);
        for id in chunk {
            dst.put_u64(*id);
        }
    }
}

/// Appends a REJECT frame (text truncated to [`MAX_TEXT_LEN`] bytes on a char boundary).
pub fn encode_reject(dst: &mut BytesMut, alert_id: u64, reason: u16, text: &str) {
    let text = truncate_utf8(text, MAX_TEXT_LEN);
    put_header(dst, frame_type::REJECT, REJECT_FIXED_LEN + text.len());
    dst.put_u64(alert_id);
    dst.put_u16(reason);
    dst.put_u16(text.len() as u16);
    dst.put_slice(text.as_bytes());
}

/// Appends an ERROR frame (text truncated to [`MAX_TEXT_LEN`] bytes on a char boundary).
pub fn encode_error(dst: &mut BytesMut, code: u16, text: &str) {
    let text = truncate_utf8(text, MAX_TEXT_LEN);
    put_header(dst, frame_type::ERROR, ERROR_FIXED_LEN + text.len());
    dst.put_u16(code);
    dst.put_u16(text.len() as u16);
    dst.put_slice(text.as_bytes());
}

/// The first `max` bytes of `b` (all of it if shorter).
fn head(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary, so cut
/// text is still UTF-8 (the receiver refuses anything else).
fn truncate_utf8(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// Fills `out` with the harness's deterministic stand-in for a GBCS alert payload.
///
/// The bytes depend only on the alert's fields, so a run can be replayed byte for byte. They start
/// like a GBCS alert (a general-block marker, the alert code and the device id) and continue with
/// pseudo-random bytes standing in for the ciphered content and MAC.
pub fn synthetic_payload(h: &AlertHeader, out: &mut [u8; SYNTHETIC_PAYLOAD_LEN]) {
    let mut head = [0u8; 20];
    head[0] = 0xDF;
    head[1] = 0x09;
    head[2..4].copy_from_slice(&h.code.to_be_bytes());
    head[4..12].copy_from_slice(&h.device_id.to_be_bytes());
    head[12..20].copy_from_slice(&h.event_ms.to_be_bytes());
    out[..head.len()].copy_from_slice(&head);
    let mut state = h.alert_id ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(h.seq).rotate_left(32);
    for chunk in out[head.len()..].chunks_mut(8) {
        state = splitmix64(state);
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A sans-IO frame decoder: push bytes in, pull frames out.
///
/// Memory stays bounded if the caller pulls every available frame after each push: the buffer then
/// never holds more than one partial frame (at most `max_frame + 4` bytes) plus the last chunk.
/// The length prefix is checked against the limit as soon as its 4 bytes arrive.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_frame: usize,
    failed: Option<WireError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_FRAME_LEN)
    }
}

impl Decoder {
    /// A decoder accepting frames whose `len` (type byte + body) is at most `max_frame`.
    pub fn new(max_frame: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_frame,
            failed: None,
        }
    }

    /// Appends received bytes. Ignored once the decoder has failed.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes currently buffered (a partial frame, or frames not yet pulled).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that makes the
    /// rest of the stream undecodable (returned again on every later call).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_frame() {
            Ok(f) => Ok(f),
            Err(e) => {
                self.buf = BytesMut::new();
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Call when the peer finished the stream: an error if a partial frame is left over.
    pub fn finish(&self) -> Result<(), WireError> {
        match (&self.failed, self.buf.len()) {
            (Some(e), _) => Err(e.clone()),
            (None, 0) => Ok(()),
            (None, buffered) => Err(WireError::Truncated { buffered }),
        }
    }

    fn try_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let Some(len_bytes) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let len = len as usize;
        if len > self.max_frame {
            return Err(WireError::Oversized {
                len,
                max: self.max_frame,
            });
        }
        if len == 0 {
            return Err(WireError::Empty);
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        let mut body = self.buf.split_to(len).freeze();
        let ty = body.get_u8();
        decode_body(ty, body).map(Some)
    }
}

/// Decodes one frame body (after the type byte).
fn decode_body(ty: u8, mut b: Bytes) -> Result<Frame, WireError> {
    match ty {
        frame_type::HELLO => {
            need(
                &b,
                HELLO_FIXED_LEN,
                "HELLO",
                "shorter than its fixed fields",
            )?;
            let version = b.get_u16();
            let mut run_id = [0u8; RUN_ID_LEN];
            b.copy_to_slice(&mut run_id);
            let run_id = RunId(run_id);
            let n = b.get_u16() as usize;
            exact(
                &b,
                n,
                "HELLO",
                "token length does not match the frame length",
            )?;
            if n > MAX_TOKEN_LEN {
                return Err(malformed("HELLO", "token longer than the limit"));
            }
            Ok(Frame::Hello(Hello {
                version,
                run_id,
                token: b,
            }))
        }
        frame_type::ALERT => {
            need(
                &b,
                ALERT_FIXED_LEN,
                "ALERT",
                "shorter than its fixed fields",
            )?;
            let header = AlertHeader {
                alert_id: b.get_u64(),
                code: b.get_u16(),
                device_id: b.get_u64(),
                region: b.get_u8(),
                event_ms: b.get_u64(),
                seq: b.get_u32(),
            };
            let n = b.get_u16() as usize;
            exact(
                &b,
                n,
                "ALERT",
                "payload length does not match the frame length",
            )?;
            Ok(Frame::Alert(Alert { header, payload: b }))
        }
        frame_type::ACK => ids_body(b, "ACK").map(Frame::Ack),
        frame_type::DUPLICATE => ids_body(b, "DUPLICATE").map(Frame::Duplicate),
        frame_type::REJECT => {
            need(
                &b,
                REJECT_FIXED_LEN,
                "REJECT",
                "shorter than its fixed fields",
            )?;
            let alert_id = b.get_u64();
            let reason = b.get_u16();
            let text = text_field(b, "REJECT")?;
            Ok(Frame::Reject(Reject {
                alert_id,
                reason,
                text,
            }))
        }
        frame_type::ERROR => {
            need(
                &b,
                ERROR_FIXED_LEN,
                "ERROR",
                "shorter than its fixed fields",
            )?;
            let code = b.get_u16();
            let text = text_field(b, "ERROR")?;
            Ok(Frame::Error(ErrorFrame { code, text }))
        }
        other => Err(WireError::UnknownType(other)),
    }
}

fn ids_body(mut b: Bytes, frame: &'static str) -> Result<Vec<u64>, WireError> {
    need(&b, 2, frame, "shorter than its count")?;
    let n = b.get_u16() as usize;
    if n == 0 {
        return Err(malformed(frame, "zero ids"));
    }
    exact(&b, n * 8, frame, "id count does not match the frame length")?;
    Ok((0..n).map(|_| b.get_u64()).collect())
}

fn text_field(mut b: Bytes, frame: &'static str) -> Result<String, WireError> {
    let n = b.get_u16() as usize;
    exact(&b, n, frame, "text length does not match the frame length")?;
    if n > MAX_TEXT_LEN {
        return Err(malformed(frame, "text longer than the limit"));
    }
    String::from_utf8(b.to_vec()).map_err(|_| WireError::BadUtf8 { frame })
}

fn malformed(frame: &'static str, what: &'static str) -> WireError {
    WireError::Malformed { frame, what }
}

fn need(b: &Bytes, n: usize, frame: &'static str, what: &'static str) -> Result<(), WireError> {
    if b.len() < n {
        return Err(malformed(frame, what));
    }
    Ok(())
}

fn exact(b: &Bytes, n: usize, frame: &'static str, what: &'static str) -> Result<(), WireError> {
    if b.len() != n {
        return Err(malformed(frame, what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    fn sample_alert(id: u64) -> Frame {
        let header = AlertHeader {
            alert_id: id,
            code: AlertCode::Restored8F36.wire(),
            device_id: 0x0011_2233_4455_6677,
            region: 1,
            event_ms: 180_000,
            seq: 2,
        };
        let mut p = [0u8; SYNTHETIC_PAYLOAD_LEN];
        synthetic_payload(&header, &mut p);
        Frame::Alert(Alert {
            header,
            payload: Bytes::copy_from_slice(&p),
        })
    }

    fn all_kinds() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                run_id: RunId([0xA5; RUN_ID_LEN]),
                token: Bytes::from_static(b"secret"),
            }),
            sample_alert(42),
            Frame::Ack(vec![1, 2, u64::MAX]),
            Frame::Duplicate(vec![3]),
            Frame::Reject(Reject {
                alert_id: 7,
                reason: RejectReason::Policy.wire(),
                text: "rejected by policy — é".into(),
            }),
            Frame::Error(ErrorFrame {
                code: ErrorCode::Malformed.wire(),
                text: String::new(),
            }),
        ]
    }

    fn decode_all(bytes: &[u8], step: usize) -> Result<Vec<Frame>, WireError> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for chunk in bytes.chunks(step.max(1)) {
            d.push(chunk);
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn every_frame_round_trips_in_any_chunking() {
        let frames = all_kinds();
        let mut buf = BytesMut::new();
        for f in &frames {
            let before = buf.len();
            f.encode(&mut buf);
            assert_eq!(buf.len() - before, f.encoded_len());
        }
        for step in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(decode_all(&buf, step).unwrap(), frames);
        }
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut d = Decoder::default();
        d.push(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes());
        assert!(matches!(d.next_frame(), Err(WireError::Oversized { .. })));
        assert_eq!(d.buffered(), 0);
        d.push(&[0; 100]);
        assert_eq!(d.buffered(), 0, "a failed decoder buffers nothing more");
    }

    #[test]
    fn malformed_frames_give_typed_errors() {
        type Check = fn(&WireError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![0, 0, 0, 0], |e| *e == WireError::Empty),
            (vec![0, 0, 0, 1, 0x77], |e| {
                *e == WireError::UnknownType(0x77)
            }),
            (vec![0, 0, 0, 3, 0x03, 0, 0], |e| {
                matches!(e, WireError::Malformed { frame: "ACK", .. })
            }),
            (vec![0, 0, 0, 3, 0x03, 0, 1], |e| {
                matches!(e, WireError::Malformed { frame: "ACK", .. })
            }),
            (vec![0, 0, 0, 5, 0x05, 0, 1, 0, 1], |e| {
                *e == WireError::Malformed {
                    frame: "ERROR",
                    what: "text length does not match the frame length",
                }
            }),
            (vec![0, 0, 0, 6, 0x05, 0, 1, 0, 1, 0xFF], |e| {
                *e == WireError::BadUtf8 { frame: "ERROR" }
            }),
            (vec![0, 0, 0, 2, 0x02, 0], |e| {
                matches!(e, WireError::Malformed { frame: "ALERT", .. })
            }),
        ];
        for (bytes, ok) in cases {
            let e = decode_all(&bytes, 1).unwrap_err();
            assert!(ok(&e), "{bytes:?} gave {e:?}");
        }
    }

    #[test]
    fn truncated_stream_is_reported_at_finish() {
        let mut buf = BytesMut::new();
        sample_alert(1).encode(&mut buf);
        let cut = &buf[..buf.len() - 3];
        assert!(matches!(
            decode_all(cut, 16),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded() {
        let mut rng = Pcg64Mcg::seed_from_u64(0x00C5_9A1E);
        for _ in 0..2_000 {
            let n = rng.random_range(0..600);
            let mut bytes = vec![0u8; n];
            rng.fill_bytes(&mut bytes);
            // Bias towards plausible headers so the body parsers are reached too.
            if n >= 5 && rng.random_bool(0.7) {
                let len = rng.random_range(1..=(n as u32 - 4));
                bytes[..4].copy_from_slice(&len.to_be_bytes());
                bytes[4] = rng.random_range(1..=6);
            }
            let mut d = Decoder::default();
            for chunk in bytes.chunks(rng.random_range(1..64)) {
                d.push(chunk);
                while let Ok(Some(_)) = d.next_frame() {}
                assert!(d.buffered() <= MAX_FRAME_LEN + 4 + 64);
            }
            let _ = d.finish();
        }
    }

    #[test]
    fn random_frames_round_trip() {
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut per_type = [0u32; 5];
        for i in 0..1_000 {
            // Every frame type in turn, so none is left out by chance.
            per_type[i % 5] += 1;
            let frame = random_frame(&mut rng, i % 5);
            let mut buf = BytesMut::new();
            frame.encode(&mut buf);
            assert!(buf.len() <= MAX_FRAME_LEN + 4);
            assert_eq!(buf.len(), frame.encoded_len());
            assert_eq!(
                decode_all(&buf, rng.random_range(1..100)).unwrap(),
                vec![frame]
            );
        }
        assert!(per_type.iter().all(|n| *n == 200));
    }

    /// Valid frames of every type, then mutated (bytes flipped, cut short, lengths lied about,
    /// junk appended): decoding never panics, never buffers more than one frame plus the last
    /// chunk, and whatever it does decode is a frame within the limits that re-encodes exactly.
    #[test]
    fn mutated_frames_of_every_type_never_panic_and_stay_bounded() {
        let mut rng = Pcg64Mcg::seed_from_u64(0x00F0_221E);
        for i in 0..5_000 {
            let mut buf = BytesMut::new();
            for _ in 0..rng.random_range(1..4) {
                let ty = (i + rng.random_range(0..6)) % 6;
                random_frame(&mut rng, ty).encode(&mut buf);
            }
            let mut bytes = buf.to_vec();
            match rng.random_range(0..4) {
                0 => {
                    for _ in 0..rng.random_range(1..8) {
                        let at = rng.random_range(0..bytes.len());
                        bytes[at] ^= 1 << rng.random_range(0..8);
                    }
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                2 => {
                    let len = rng.random_range(0..=u32::MAX);
                    bytes[..4].copy_from_slice(&len.to_be_bytes());
                }
                _ => {
                    let mut junk = vec![0u8; rng.random_range(1..64)];
                    rng.fill_bytes(&mut junk);
                    bytes.extend(junk);
                }
            }
            let step = rng.random_range(1..256);
            let mut d = Decoder::default();
            for chunk in bytes.chunks(step) {
                d.push(chunk);
                while let Ok(Some(f)) = d.next_frame() {
                    assert!(f.encoded_len() <= MAX_FRAME_LEN + 4);
                    let mut again = BytesMut::new();
                    f.encode(&mut again);
                    assert_eq!(decode_all(&again, 7).unwrap(), vec![f]);
                }
                assert!(d.buffered() <= MAX_FRAME_LEN + 4 + step);
            }
            let _ = d.finish();
        }
    }

    fn random_frame(rng: &mut Pcg64Mcg, ty: usize) -> Frame {
        {
            match ty {
                0 => {
                    let mut token = vec![0u8; rng.random_range(0..=MAX_TOKEN_LEN)];
                    rng.fill_bytes(&mut token);
                    Frame::Hello(Hello {
                        version: rng.random(),
                        run_id: RunId(rng.random()),
                        token: token.into(),
                    })
                }
                1 => {
                    let mut payload = vec![0u8; rng.random_range(0..=MAX_PAYLOAD_LEN)];
                    rng.fill_bytes(&mut payload);
                    Frame::Alert(Alert {
                        header: AlertHeader {
                            alert_id: rng.random(),
                            code: rng.random(),
                            device_id: rng.random(),
                            region: rng.random(),
                            event_ms: rng.random(),
                            seq: rng.random(),
                        },
                        payload: payload.into(),
                    })
                }
                2 => Frame::Ack(
                    (0..rng.random_range(1..=MAX_ACK_IDS))
                        .map(|_| rng.random())
                        .collect(),
                ),
                5 => Frame::Duplicate(
                    (0..rng.random_range(1..=MAX_ACK_IDS))
                        .map(|_| rng.random())
                        .collect(),
                ),
                3 => Frame::Reject(Reject {
                    alert_id: rng.random(),
                    reason: rng.random(),
                    text: "x".repeat(rng.random_range(0..=MAX_TEXT_LEN)),
                }),
                _ => Frame::Error(ErrorFrame {
                    code: rng.random(),
                    text: "é".repeat(rng.random_range(0..=MAX_TEXT_LEN / 2)),
                }),
            }
        }
    }

    #[test]
    fn big_acks_split_into_several_frames() {
        let ids: Vec<u64> = (0..1200).collect();
        let mut buf = BytesMut::new();
        encode_ack(&mut buf, &ids);
        let frames = decode_all(&buf, 1000).unwrap();
        assert_eq!(frames.len(), 3);
        let back: Vec<u64> = frames
            .into_iter()
            .flat_map(|f| match f {
                Frame::Ack(v) => v,
                _ => vec![],
            })
            .collect();
        assert_eq!(back, ids);
    }

    #[test]
    fn run_ids_print_and_parse_as_hex() {
        let id = RunId([0x01, 0xAB, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF]);
        let text = id.to_string();
        assert_eq!(text, "01ab00000000000000000000000000ff");
        assert_eq!(text.parse::<RunId>(), Ok(id));
        for bad in [
            "",
            "01ab",
            "zz".repeat(16).as_str(),
            "é".repeat(16).as_str(),
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn synthetic_payload_is_deterministic() {
        let Frame::Alert(a) = sample_alert(9) else {
            unreachable!()
        };
        let Frame::Alert(b) = sample_alert(9) else {
            unreachable!()
        };
        assert_eq!(a.payload, b.payload);
        assert_eq!(a.payload.len(), SYNTHETIC_PAYLOAD_LEN);
        assert_eq!(&a.payload[..2], &[0xDF, 0x09]);
    }
}
