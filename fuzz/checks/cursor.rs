//! `cursor` fuzz check: `Cursor::decode` never panics and decoded cursors round-trip.
//!
//! Input: a token, or `\0` + raw cursor bytes (version, entries) that get a valid CRC-32 and
//! base64url appended here, so the fuzzer reaches the entry parser past the checksum.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use comet_state::Cursor;

pub fn check(data: &[u8]) {
    let token = match data.split_first() {
        Some((0, body)) => {
            let mut raw = body.to_vec();
            raw.extend_from_slice(&crc32(body).to_be_bytes());
            URL_SAFE_NO_PAD.encode(raw)
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    if let Ok(cursor) = Cursor::decode(&token) {
        let again = cursor.encode();
        let back = Cursor::decode(&again).expect("a re-encoded cursor decodes");
        assert_eq!(back, cursor);
        assert_eq!(back.encode(), again, "encoding is canonical");
    }
}

/// IEEE CRC-32 (the cursor's checksum; private in comet-state).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
