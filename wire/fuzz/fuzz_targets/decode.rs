//! Fuzzes the `csp-alert/2` frame decoder: any bytes, pushed in any chunking, must never panic,
//! never make the decoder hold more than one frame's worth of bytes beyond the last chunk, and
//! every frame it does decode must re-encode to bytes that decode to the same frame.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so split frame headers and bodies are explored too.
    let Some((step, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(*step).max(1);
    let mut dec = wire::Decoder::default();
    let mut frames = Vec::new();
    for chunk in data.chunks(step) {
        dec.push(chunk);
        while let Ok(Some(f)) = dec.next_frame() {
            frames.push(f);
        }
        assert!(dec.buffered() <= wire::MAX_FRAME_LEN + 4 + step);
    }
    let _ = dec.finish();
    for f in frames {
        let mut buf = BytesMut::new();
        f.encode(&mut buf);
        assert_eq!(buf.len(), f.encoded_len());
        let mut again = wire::Decoder::default();
        again.push(&buf);
        assert_eq!(again.next_frame(), Ok(Some(f)));
        assert_eq!(again.finish(), Ok(()));
    }
});
