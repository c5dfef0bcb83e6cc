//! Every limit of `docs/protocol.md` §2–§3 at its boundary and just past it, from both sides: what
//! the encoder writes (it cuts over-long tokens and text so a frame always stays decodable) and
//! what the decoder accepts (exactly the documented lengths; anything else is the named error).
//! Also the decoder's contract: truncation, a failure that sticks, bytes buffered.

use bytes::{BufMut, Bytes, BytesMut};
use wire::{
    Alert, AlertHeader, Decoder, ErrorFrame, Frame, Hello, MAX_ACK_IDS, MAX_FRAME_LEN,
    MAX_PAYLOAD_LEN, MAX_TEXT_LEN, MAX_TOKEN_LEN, Reject, RunId, WireError, frame_type,
};

/// A frame as an endpoint written from the document would put it on the wire: `len`, type, body.
fn raw(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32 + 1).to_be_bytes().to_vec();
    v.push(ty);
    v.extend_from_slice(body);
    v
}

fn encoded(f: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    f.encode(&mut buf);
    assert_eq!(buf.len(), f.encoded_len(), "encoded_len");
    buf.to_vec()
}

/// Decodes a whole stream pushed in one piece, then ended.
fn decode(bytes: &[u8]) -> Result<Vec<Frame>, WireError> {
    let mut d = Decoder::default();
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = d.next_frame()? {
        out.push(f);
    }
    d.finish()?;
    Ok(out)
}

fn malformed(frame: &'static str, what: &'static str) -> Result<Vec<Frame>, WireError> {
    Err(WireError::Malformed { frame, what })
}

fn hello(token: &[u8]) -> Frame {
    Frame::Hello(Hello {
        version: 2,
        run_id: RunId([0x5A; 16]),
        token: Bytes::copy_from_slice(token),
    })
}

fn hello_body(declared: u16, token: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 2];
    b.extend_from_slice(&[0x5A; 16]);
    b.extend_from_slice(&declared.to_be_bytes());
    b.extend_from_slice(token);
    b
}

fn alert(payload: &[u8]) -> Frame {
    Frame::Alert(Alert {
        header: AlertHeader {
            alert_id: 9,
            code: 0x0AD1,
            device_id: 7,
            region: 2,
            event_ms: 60_000,
            seq: 1,
        },
        payload: Bytes::copy_from_slice(payload),
    })
}

fn alert_body(declared: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u64(9);
    b.put_u16(0x0AD1);
    b.put_u64(7);
    b.put_u8(2);
    b.put_u64(60_000);
    b.put_u32(1);
    b.put_u16(declared);
    b.put_slice(payload);
    b.to_vec()
}

/// A REJECT and an ERROR carrying `text`: the two frames with a text field.
fn texts(text: &str) -> [Frame; 2] {
    [
        Frame::Reject(Reject {
            alert_id: 3,
            reason: 5,
            text: text.into(),
        }),
        Frame::Error(ErrorFrame {
            code: 1,
            text: text.into(),
        }),
    ]
}

fn text_of(f: &Frame) -> &str {
    match f {
        Frame::Reject(r) => &r.text,
        Frame::Error(e) => &e.text,
        other => panic!("{other:?} has no text"),
    }
}

/// A REJECT body and an ERROR body declaring `declared` text bytes, followed by `text`.
fn text_bodies(declared: u16, text: &[u8]) -> [(u8, &'static str, Vec<u8>); 2] {
    let mut reject = vec![0, 0, 0, 0, 0, 0, 0, 3, 0, 5];
    let mut error = vec![0, 1];
    for b in [&mut reject, &mut error] {
        b.extend_from_slice(&declared.to_be_bytes());
        b.extend_from_slice(text);
    }
    [
        (frame_type::REJECT, "REJECT", reject),
        (frame_type::ERROR, "ERROR", error),
    ]
}

#[test]
fn a_token_of_512_bytes_is_carried_whole_and_a_longer_one_is_cut_to_512() {
    let token: Vec<u8> = (0..=MAX_TOKEN_LEN).map(|i| i as u8).collect();
    let whole = hello(&token[..MAX_TOKEN_LEN]);
    let bytes = encoded(&whole);
    assert_eq!(bytes.len(), 4 + 1 + 20 + 512);
    assert_eq!(decode(&bytes), Ok(vec![whole.clone()]));

    let cut = encoded(&hello(&token));
    assert_eq!(
        cut, bytes,
        "the 513th byte is dropped, nothing else changes"
    );
    let mut direct = BytesMut::new();
    wire::encode_hello(&mut direct, 2, &RunId([0x5A; 16]), &token);
    assert_eq!(direct.to_vec(), bytes);
}

#[test]
fn a_hello_declaring_a_token_over_512_bytes_is_malformed() {
    let token = [7u8; MAX_TOKEN_LEN + 1];
    assert_eq!(
        decode(&raw(frame_type::HELLO, &hello_body(513, &token))),
        malformed("HELLO", "token longer than the limit")
    );
    assert_eq!(
        decode(&raw(frame_type::HELLO, &hello_body(512, &token[..512]))),
        Ok(vec![hello(&token[..512])])
    );
}

#[test]
fn empty_token_payload_and_text_are_valid_and_smallest() {
    let cases = [
        (hello(b""), 4 + 1 + 20),
        (alert(b""), 4 + 1 + 33),
        (texts("")[0].clone(), 4 + 1 + 12),
        (texts("")[1].clone(), 4 + 1 + 4),
    ];
    for (frame, len) in cases {
        let bytes = encoded(&frame);
        assert_eq!(bytes.len(), len, "{frame:?}");
        assert_eq!(decode(&bytes), Ok(vec![frame]));
    }
}

#[test]
fn text_of_256_bytes_is_carried_whole_and_longer_text_is_cut_on_a_character_boundary() {
    let a = |n| "a".repeat(n);
    let cases = [
        (a(256), a(256)),
        ("é".repeat(128), "é".repeat(128)),
        (a(257), a(256)),
        (a(256) + "é", a(256)),
        // A character straddling byte 256 is dropped whole, whatever its width.
        (a(255) + "é", a(255)),
        (a(254) + "€", a(254)),
        (a(253) + "😀", a(253)),
        (a(255) + "😀", a(255)),
        ("é".repeat(129), "é".repeat(128)),
        (a(1000), a(256)),
    ];
    for (sent, received) in cases {
        for frame in texts(&sent) {
            let bytes = encoded(&frame);
            let back = decode(&bytes).unwrap_or_else(|e| panic!("{} bytes: {e}", sent.len()));
            assert_eq!(text_of(&back[0]), received, "{} bytes sent", sent.len());
        }
    }
    let mut direct = BytesMut::new();
    wire::encode_reject(&mut direct, 3, 5, &(a(255) + "é"));
    wire::encode_error(&mut direct, 1, &(a(255) + "é"));
    assert_eq!(decode(&direct), Ok(texts(&a(255)).to_vec()));
}

#[test]
fn a_frame_declaring_text_over_256_bytes_is_malformed() {
    let text = [b'a'; MAX_TEXT_LEN + 1];
    for (ty, name, body) in text_bodies(257, &text) {
        assert_eq!(
            decode(&raw(ty, &body)),
            malformed(name, "text longer than the limit")
        );
    }
    for (ty, _, body) in text_bodies(256, &text[..256]) {
        let frames = decode(&raw(ty, &body)).expect("256 bytes of text");
        assert_eq!(text_of(&frames[0]), "a".repeat(256));
    }
}

#[test]
fn text_that_is_not_utf8_is_malformed() {
    // A character cut in half (a sender that truncated by bytes), and a byte UTF-8 never uses.
    for text in [&b"caf\xC3"[..], b"\xFF", b"ok\xED\xA0\x80"] {
        for (ty, name, body) in text_bodies(text.len() as u16, text) {
            assert_eq!(
                decode(&raw(ty, &body)),
                Err(WireError::BadUtf8 { frame: name })
            );
        }
    }
}

#[test]
fn a_maximum_size_alert_fills_the_largest_frame() {
    let payload: Vec<u8> = (0..=MAX_PAYLOAD_LEN).map(|i| (i * 7) as u8).collect();
    let biggest = alert(&payload[..MAX_PAYLOAD_LEN]);
    let bytes = encoded(&biggest);
    assert_eq!(bytes.len(), 4 + MAX_FRAME_LEN);
    assert_eq!(bytes[..4], 4096u32.to_be_bytes());
    assert_eq!(decode(&bytes), Ok(vec![biggest]));
    // One byte more does not fit: the encoder cuts it so the frame stays within the limit.
    assert_eq!(encoded(&alert(&payload)), bytes);
}

#[test]
fn an_alert_whose_payload_length_disagrees_with_the_frame_is_malformed() {
    assert_eq!(
        decode(&raw(frame_type::ALERT, &alert_body(4, b"abc"))),
        malformed("ALERT", "payload length does not match the frame length")
    );
    assert_eq!(
        decode(&raw(frame_type::ALERT, &alert_body(2, b"abc"))),
        malformed("ALERT", "payload length does not match the frame length")
    );
    assert_eq!(
        decode(&raw(frame_type::ALERT, &alert_body(3, b"abc"))),
        Ok(vec![alert(b"abc")])
    );
}

#[test]
fn a_frame_length_at_the_limit_is_accepted_and_one_more_is_refused_before_the_body() {
    // ERROR with 59 bytes of text: len = 1 + 2 + 2 + 59 = 64.
    let at_limit = texts(&"x".repeat(59))[1].clone();
    let bytes = encoded(&at_limit);
    let mut d = Decoder::new(64);
    d.push(&bytes);
    assert_eq!(d.next_frame(), Ok(Some(at_limit)));

    let over = encoded(&texts(&"x".repeat(60))[1]);
    let mut d = Decoder::new(64);
    d.push(&over[..4]);
    assert_eq!(
        d.next_frame(),
        Err(WireError::Oversized { len: 65, max: 64 })
    );
    assert_eq!(d.buffered(), 0);

    for len in [MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut d = Decoder::default();
        d.push(&len.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(WireError::Oversized {
                len: len as usize,
                max: MAX_FRAME_LEN
            })
        );
    }
}

#[test]
fn acks_and_duplicates_carry_511_ids_a_frame_and_more_go_in_further_frames() {
    type Encode = fn(&mut BytesMut, &[u64]);
    type Build = fn(Vec<u64>) -> Frame;
    let kinds: [(Encode, Build); 2] = [
        (wire::encode_ack, Frame::Ack),
        (wire::encode_duplicate, Frame::Duplicate),
    ];
    for (encode, frame) in kinds {
        let ids: Vec<u64> = (1..=2 * MAX_ACK_IDS as u64 + 1).collect();
        let mut buf = BytesMut::new();
        encode(&mut buf, &ids[..MAX_ACK_IDS]);
        assert_eq!(buf.len(), 4 + 1 + 2 + 8 * 511);
        assert_eq!(decode(&buf), Ok(vec![frame(ids[..511].to_vec())]));

        let mut buf = BytesMut::new();
        encode(&mut buf, &ids);
        assert_eq!(
            decode(&buf),
            Ok(vec![
                frame(ids[..511].to_vec()),
                frame(ids[511..1022].to_vec()),
                frame(ids[1022..].to_vec()),
            ])
        );
        // Encoding the frame value directly gives the same bytes, and says how many.
        assert_eq!(encoded(&frame(ids.clone())), buf.to_vec());

        // No ids, no frame: an empty ACK would be malformed.
        let mut buf = BytesMut::new();
        encode(&mut buf, &[]);
        assert!(buf.is_empty());
        assert_eq!(encoded(&frame(vec![])), Vec::<u8>::new());
    }
}

#[test]
fn an_id_list_that_disagrees_with_its_frame_is_malformed() {
    for (ty, name) in [
        (frame_type::ACK, "ACK"),
        (frame_type::DUPLICATE, "DUPLICATE"),
    ] {
        let cases: [(&[u8], &str); 5] = [
            (&[0], "shorter than its count"),
            (&[0, 0], "zero ids"),
            (
                &[0, 2, 0, 0, 0, 0, 0, 0, 0, 1],
                "id count does not match the frame length",
            ),
            (
                &[0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                "id count does not match the frame length",
            ),
            (
                &[0, 1, 0, 0, 0, 0, 0, 0, 0],
                "id count does not match the frame length",
            ),
        ];
        for (body, what) in cases {
            assert_eq!(decode(&raw(ty, body)), malformed(name, what), "{body:?}");
        }
    }
}

#[test]
fn a_body_shorter_than_its_fixed_fields_is_malformed_and_one_of_exactly_that_size_is_not() {
    let hello_fixed = hello_body(0, b"");
    let alert_fixed = alert_body(0, b"");
    let [(_, _, reject_fixed), (_, _, error_fixed)] = text_bodies(0, b"");
    let cases = [
        (frame_type::HELLO, "HELLO", hello_fixed, hello(b"")),
        (frame_type::ALERT, "ALERT", alert_fixed, alert(b"")),
        (
            frame_type::REJECT,
            "REJECT",
            reject_fixed,
            texts("")[0].clone(),
        ),
        (
            frame_type::ERROR,
            "ERROR",
            error_fixed,
            texts("")[1].clone(),
        ),
    ];
    for (ty, name, body, frame) in cases {
        assert_eq!(decode(&raw(ty, &body)), Ok(vec![frame]));
        assert_eq!(
            decode(&raw(ty, &body[..body.len() - 1])),
            malformed(name, "shorter than its fixed fields")
        );
        assert_eq!(
            decode(&raw(ty, &[])),
            malformed(name, "shorter than its fixed fields")
        );
    }
}

#[test]
fn a_token_or_text_length_that_disagrees_with_the_frame_is_malformed() {
    let token_mismatch = "token length does not match the frame length";
    assert_eq!(
        decode(&raw(frame_type::HELLO, &hello_body(1, b""))),
        malformed("HELLO", token_mismatch)
    );
    assert_eq!(
        decode(&raw(frame_type::HELLO, &hello_body(0, b"x"))),
        malformed("HELLO", token_mismatch)
    );
    for declared in [0, 2] {
        for (ty, name, body) in text_bodies(declared, b"x") {
            assert_eq!(
                decode(&raw(ty, &body)),
                malformed(name, "text length does not match the frame length")
            );
        }
    }
}

#[test]
fn zero_length_and_unknown_types_are_refused() {
    assert_eq!(decode(&[0, 0, 0, 0]), Err(WireError::Empty));
    for ty in [0x00, 0x07, 0x80, 0xFF] {
        assert_eq!(decode(&raw(ty, b"")), Err(WireError::UnknownType(ty)));
    }
}

#[test]
fn a_stream_that_ends_part_way_through_a_frame_is_truncated() {
    let whole = encoded(&alert(b"payload"));
    for cut in [1, 3, 4, 5, whole.len() - 1] {
        let mut stream = whole.clone();
        stream.extend_from_slice(&whole[..cut]);
        let mut d = Decoder::default();
        d.push(&stream);
        assert_eq!(d.next_frame(), Ok(Some(alert(b"payload"))));
        assert_eq!(d.next_frame(), Ok(None), "{cut} bytes are not a frame yet");
        assert_eq!(d.buffered(), cut);
        assert_eq!(d.finish(), Err(WireError::Truncated { buffered: cut }));
    }
}

#[test]
fn the_decoder_buffers_a_partial_frame_and_hands_out_whole_ones_in_order() {
    let first = encoded(&alert(b"one"));
    let second = encoded(&Frame::Ack(vec![1, 2]));
    let mut d = Decoder::default();
    d.push(&first[..3]);
    assert_eq!(d.buffered(), 3);
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&first[3..]);
    d.push(&second[..10]);
    assert_eq!(d.buffered(), first.len() + 10);
    assert_eq!(d.next_frame(), Ok(Some(alert(b"one"))));
    assert_eq!(d.buffered(), 10);
    assert_eq!(d.next_frame(), Ok(None));
    d.push(&second[10..]);
    assert_eq!(d.next_frame(), Ok(Some(Frame::Ack(vec![1, 2]))));
    assert_eq!(d.buffered(), 0);
    assert_eq!(d.finish(), Ok(()));
}

#[test]
fn after_an_error_the_decoder_stays_failed_and_holds_nothing() {
    let mut d = Decoder::default();
    d.push(&raw(0x09, b"junk"));
    d.push(&encoded(&alert(b"")));
    let e = WireError::UnknownType(0x09);
    assert_eq!(d.next_frame(), Err(e.clone()));
    assert_eq!(d.buffered(), 0);
    d.push(&encoded(&alert(b"")));
    assert_eq!(d.buffered(), 0, "bytes after the error are dropped");
    assert_eq!(
        d.next_frame(),
        Err(e.clone()),
        "a valid frame after the error"
    );
    assert_eq!(d.finish(), Err(e));
}

#[test]
fn run_ids_other_than_32_hex_digits_are_refused() {
    let good = "0123456789abcdef0123456789abcdef";
    assert!(good.parse::<RunId>().is_ok());
    for bad in [
        "",
        &good[..31],
        &format!("{good}0"),
        &"+f".repeat(16),
        &"-1".repeat(16),
        &" f".repeat(16),
        &"0x".repeat(16),
        &"g0".repeat(16),
        &"é".repeat(16),
    ] {
        let e = bad.parse::<RunId>().expect_err(bad);
        assert_eq!(
            e.to_string(),
            format!("'{bad}' is not a run id (32 hex digits)")
        );
    }
}
