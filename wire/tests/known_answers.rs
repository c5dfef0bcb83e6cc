//! Known answers: the exact bytes of every frame type for fixed inputs, and every number the
//! protocol fixes (limits, frame types, REJECT reasons, ERROR codes), taken from
//! `docs/protocol.md`. An endpoint written from the document must interoperate with this codec, so
//! the document's numbers, not the code's, are the expected values here.

use bytes::{Bytes, BytesMut};
use ledger::{AlertCode, Region};
use wire::{
    Alert, AlertHeader, Decoder, ErrorCode, ErrorFrame, Frame, Hello, Reject, RejectReason, RunId,
    SYNTHETIC_PAYLOAD_LEN, WireError, frame_type,
};

/// Bytes written as hex pairs separated by white space (the layout of the document's dumps
/// without their offset column).
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad hex byte {b:?}")))
        .collect()
}

fn encoded(f: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    f.encode(&mut buf);
    assert_eq!(buf.len(), f.encoded_len(), "encoded_len of {f:?}");
    buf.to_vec()
}

/// Decodes `bytes` pushed in one piece; they must hold exactly one frame.
fn decode_one(bytes: &[u8]) -> Frame {
    let mut d = Decoder::default();
    d.push(bytes);
    let f = d.next_frame().expect("decodes").expect("a whole frame");
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(d.finish(), Ok(()));
    f
}

/// Encoding `frame` gives exactly `bytes`, and decoding `bytes` gives `frame` back.
fn assert_known_answer(frame: Frame, bytes: &[u8]) {
    assert_eq!(encoded(&frame), bytes, "encoding {frame:?}");
    assert_eq!(decode_one(bytes), frame);
}

/// The ALERT of `docs/protocol.md` §5.
fn doc_alert_header() -> AlertHeader {
    AlertHeader {
        alert_id: 84001,
        code: AlertCode::Restored8F36.wire(),
        device_id: 0x00AB_CDEF_0001_2345,
        region: 1,
        event_ms: 1_234_567,
        seq: 2,
    }
}

fn synthetic_alert(header: AlertHeader) -> Frame {
    let mut payload = [0u8; SYNTHETIC_PAYLOAD_LEN];
    wire::synthetic_payload(&header, &mut payload);
    Frame::Alert(Alert {
        header,
        payload: Bytes::copy_from_slice(&payload),
    })
}

#[test]
fn the_documented_alert_is_190_bytes_of_known_content() {
    let bytes = hex("
        00 00 00 ba 02 00 00 00 00 00 01 48 21 8f 36 00
        ab cd ef 00 01 23 45 01 00 00 00 00 00 12 d6 87
        00 00 00 02 00 98 df 09 8f 36 00 ab cd ef 00 01
        23 45 00 00 00 00 00 12 d6 87 45 65 7c ca c8 c0
        9c a1 c0 71 f6 05 7c 8e e6 e8 43 00 97 35 cb c5
        86 a0 d3 28 b8 18 f1 cf 23 d0 08 43 19 f6 9d 46
        d3 50 ed cd e7 ed 1d fb 21 fa 4b 5e b6 11 d6 cf
        5f 86 60 45 2f dd eb 0c 53 8d 8e 42 8e ba 0a 8b
        71 6c c7 a8 7b ee 24 48 e4 ed 02 fb 32 d4 db 03
        56 bd 36 5d 2c eb 05 6f 0a 90 ff 66 12 39 68 af
        8f 78 3b 04 19 0c 2f 62 79 09 fb 01 cc c7 c3 54
        29 8b d8 67 1e d1 24 b5 53 f6 96 97 f9 e9");
    assert_eq!(bytes.len(), 190);
    assert_known_answer(synthetic_alert(doc_alert_header()), &bytes);
}

/// Every alert of a run gets its own stand-in payload: no two (alert id, seq) pairs share the
/// pseudo-random part, whichever bits of the id and the sequence number differ.
#[test]
fn synthetic_payloads_differ_for_every_alert_id_and_seq() {
    let mut tails = std::collections::HashSet::new();
    for alert_id in 0..64 {
        for seq in 1..=64 {
            let Frame::Alert(a) = synthetic_alert(AlertHeader {
                alert_id,
                seq,
                ..doc_alert_header()
            }) else {
                unreachable!()
            };
            assert!(
                tails.insert(a.payload.slice(20..)),
                "alert {alert_id} seq {seq} repeats another alert's payload"
            );
        }
    }
}

#[test]
fn the_documented_acks_and_reject() {
    assert_known_answer(
        Frame::Ack(vec![84001]),
        &hex("00 00 00 0b 03 00 01 00 00 00 00 00 01 48 21"),
    );
    assert_known_answer(
        Frame::Ack(vec![84000, 84001, 84002]),
        &hex("
            00 00 00 1b 03 00 03 00 00 00 00 00 01 48 20 00
            00 00 00 00 01 48 21 00 00 00 00 00 01 48 22"),
    );
    assert_known_answer(
        Frame::Reject(Reject {
            alert_id: 84001,
            reason: RejectReason::Policy.wire(),
            text: "endpoint rejects every alert".into(),
        }),
        &hex("
            00 00 00 29 04 00 00 00 00 00 01 48 21 00 05 00
            1c 65 6e 64 70 6f 69 6e 74 20 72 65 6a 65 63 74
            73 20 65 76 65 72 79 20 61 6c 65 72 74"),
    );
}

/// HELLO, DUPLICATE and ERROR have no dump in the document: these are built from its tables
/// (§3.1, §3.6, §3.5).
#[test]
fn hello_duplicate_and_error_follow_the_documented_layout() {
    let mut run = [0u8; 16];
    for (i, b) in run.iter_mut().enumerate() {
        *b = i as u8;
    }
    // len = 1 (type) + 2 (version) + 16 (run id) + 2 (token_len) + 3 (token) = 24.
    assert_known_answer(
        Frame::Hello(Hello {
            version: 2,
            run_id: RunId(run),
            token: Bytes::from_static(b"tok"),
        }),
        &hex("
            00 00 00 18 01 00 02
            00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
            00 03 74 6f 6b"),
    );
    assert_known_answer(
        Frame::Duplicate(vec![84001]),
        &hex("00 00 00 0b 06 00 01 00 00 00 00 00 01 48 21"),
    );
    // ERROR UNAUTHENTICATED "bad token": len = 1 + 2 + 2 + 9 = 14.
    assert_known_answer(
        Frame::Error(ErrorFrame {
            code: ErrorCode::Unauthenticated.wire(),
            text: "bad token".into(),
        }),
        &hex("00 00 00 0e 05 00 04 00 09 62 61 64 20 74 6f 6b 65 6e"),
    );
}

#[test]
fn the_protocols_numbers_are_the_documented_ones() {
    assert_eq!(wire::ALPN, b"csp-alert/2");
    assert_eq!(wire::PROTOCOL_VERSION, 2);
    assert_eq!(wire::RUN_ID_LEN, 16);
    assert_eq!(wire::HEADER_LEN, 5);
    assert_eq!(wire::MAX_FRAME_LEN, 4096);
    assert_eq!(wire::ALERT_FIXED_LEN, 33);
    assert_eq!(wire::MAX_PAYLOAD_LEN, 4062);
    assert_eq!(wire::MAX_ACK_IDS, 511);
    assert_eq!(wire::MAX_TEXT_LEN, 256);
    assert_eq!(wire::MAX_TOKEN_LEN, 512);
    assert_eq!(wire::SYNTHETIC_PAYLOAD_LEN, 152);
    let types = [
        frame_type::HELLO,
        frame_type::ALERT,
        frame_type::ACK,
        frame_type::REJECT,
        frame_type::ERROR,
        frame_type::DUPLICATE,
    ];
    assert_eq!(types, [1, 2, 3, 4, 5, 6]);
}

#[test]
fn reject_reasons_have_their_documented_numbers_and_unknown_ones_read_as_other() {
    let table = [
        (1, RejectReason::UnknownCode),
        (2, RejectReason::UnknownRegion),
        (3, RejectReason::PayloadTooLarge),
        (4, RejectReason::StorageFailure),
        (5, RejectReason::Policy),
        (0xFFFF, RejectReason::Other),
    ];
    for (n, reason) in table {
        assert_eq!(reason.wire(), n, "{reason:?}");
        assert_eq!(RejectReason::from_wire(n), reason, "{n}");
    }
    for n in [0, 6, 0x00FF, 0xFFFE] {
        assert_eq!(RejectReason::from_wire(n), RejectReason::Other, "{n}");
    }
}

#[test]
fn error_codes_have_their_documented_numbers_and_unknown_ones_read_as_other() {
    let table = [
        (1, ErrorCode::Malformed),
        (2, ErrorCode::Oversized),
        (3, ErrorCode::UnknownFrameType),
        (4, ErrorCode::Unauthenticated),
        (5, ErrorCode::UnexpectedFrame),
        (6, ErrorCode::Timeout),
        (7, ErrorCode::UnsupportedVersion),
        (8, ErrorCode::Internal),
        (0xFFFF, ErrorCode::Other),
    ];
    for (n, code) in table {
        assert_eq!(code.wire(), n, "{code:?}");
        assert_eq!(ErrorCode::from_wire(n), code, "{n}");
    }
    for n in [0, 9, 0x00FF, 0xFFFE] {
        assert_eq!(ErrorCode::from_wire(n), ErrorCode::Other, "{n}");
    }
}

/// §2 and §3.5: an oversized `len` is OVERSIZED, an unknown type byte UNKNOWN_FRAME_TYPE, and
/// everything else that cannot be parsed (including `len = 0` and a stream ending part-way through
/// a frame) MALFORMED.
#[test]
fn each_decode_error_is_reported_with_its_documented_code() {
    let cases = [
        (
            WireError::Oversized {
                len: 4097,
                max: 4096,
            },
            2,
        ),
        (WireError::UnknownType(0x07), 3),
        (WireError::Empty, 1),
        (
            WireError::Malformed {
                frame: "ACK",
                what: "zero ids",
            },
            1,
        ),
        (WireError::BadUtf8 { frame: "REJECT" }, 1),
        (WireError::Truncated { buffered: 3 }, 1),
    ];
    for (e, n) in cases {
        assert_eq!(e.code().wire(), n, "{e:?}");
    }
}

#[test]
fn an_alert_header_names_its_code_and_region_when_the_protocol_registers_them() {
    let h = doc_alert_header();
    assert_eq!(h.alert_code(), Some(AlertCode::Restored8F36));
    assert_eq!(h.region(), Some(Region::NORTH));
    let other = AlertHeader {
        code: 0x0AD1,
        region: 2,
        ..h
    };
    assert_eq!(other.alert_code(), Some(AlertCode::Ad1));
    assert_eq!(other.region(), Some(Region::CENTRAL_SOUTH));
    let unknown = AlertHeader {
        code: 0x8F37,
        region: 3,
        ..h
    };
    assert_eq!(unknown.alert_code(), None);
    assert_eq!(unknown.region(), None);
}

#[test]
fn run_ids_are_32_lower_case_hex_digits() {
    let id = RunId([
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0, 0x0F, 0xF0, 0x10, 0x7F, 0x80, 0xFE, 0xFF,
    ]);
    assert_eq!(id.to_string(), "0123456789abcdef000ff0107f80feff");
    assert_eq!("0123456789abcdef000ff0107f80feff".parse(), Ok(id));
    assert_eq!("0123456789ABCDEF000FF0107F80FEFF".parse(), Ok(id));
}
