//! Any bytes: decoding must return Ok or a typed error, never panic; whatever decodes must
//! re-encode and decode to the same message.
#![no_main]

use clasp_proto::{decode_frame, decode_message, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_message(data);
    if let Ok(decoded) = decode_frame(data) {
        if let Ok(frame) = encode_frame(&decoded.header, &decoded.message) {
            let again = decode_frame(&frame).expect("our own encoding decodes");
            // NaN payloads compare unequal; compare the re-encodings instead.
            let twice = encode_frame(&again.header, &again.message).expect("re-encodes");
            assert_eq!(frame, twice, "encode/decode is not a fixed point");
        }
    }
});
