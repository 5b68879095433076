//! `token` fuzz check: `verify` never panics; `mint` → `verify` gives exactly the expected
//! outcome; a one-character change to a valid token is always refused.
//!
//! First byte selects the mode: 0 = the rest is a token; 1 = the rest is
//! `header JSON \n claims JSON`, properly signed here so claims parsing is reached;
//! anything else = claims built from the bytes, minted and verified.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use comet_token::{
    Claims, LEEWAY_SECS, MAX_TOKEN_CHANNELS, MAX_TOKEN_LEN, TokenError, mint, verify,
};
use hmac::{Hmac, Mac};

const SECRET: &[u8] = b"fuzz-secret";
const NOW: u64 = 1_800_000_000;

pub fn check(data: &[u8]) {
    match data.split_first() {
        None => {}
        Some((0, rest)) => verified(&String::from_utf8_lossy(rest), NOW),
        Some((1, rest)) => {
            let mut parts = rest.splitn(2, |b| *b == b'\n');
            let (header, body) = (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(body)
            );
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any key length");
            mac.update(input.as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
            verified(&format!("{input}.{sig}"), NOW);
        }
        Some((_, rest)) => round_trip(&mut Input(rest)),
    }
}

/// Verifies an arbitrary token; accepted claims must satisfy the documented limits.
fn verified(token: &str, now: u64) {
    let Ok(claims) = verify(SECRET, token, now) else {
        return;
    };
    assert!(claims.channels.len() <= MAX_TOKEN_CHANNELS);
    assert!(claims.exp.saturating_add(LEEWAY_SECS) > now);
    assert!(
        claims
            .nbf
            .is_none_or(|nbf| nbf <= now.saturating_add(LEEWAY_SECS))
    );
    // Whatever JSON was accepted, re-minting the claims gives a token that verifies the same.
    let again = mint(SECRET, &claims).expect("mint");
    if again.len() <= MAX_TOKEN_LEN {
        assert_eq!(verify(SECRET, &again, now), Ok(claims));
    }
}

fn round_trip(input: &mut Input) {
    let flags = input.byte();
    let now = input.u64();
    let near = |input: &mut Input| now.wrapping_add(i64::from(input.byte() as i8) as u64);
    let exp = if flags & 1 == 0 {
        near(input)
    } else {
        input.u64()
    };
    let nbf = match flags & 6 {
        0 => None,
        2 => Some(near(input)),
        _ => Some(input.u64()),
    };
    let sub = (flags & 8 != 0).then(|| input.text());
    let count = usize::from(input.byte()) + if flags & 16 != 0 { 200 } else { 0 };
    let channels = (0..count).map(|_| input.text()).collect();
    let claims = Claims {
        sub,
        channels,
        exp,
        nbf,
    };
    let token = mint(SECRET, &claims).expect("mint");
    let want = if token.len() > MAX_TOKEN_LEN {
        Err(TokenError::Malformed("too long"))
    } else if claims.channels.len() > MAX_TOKEN_CHANNELS {
        Err(TokenError::Malformed("too many channels"))
    } else if claims.exp.saturating_add(LEEWAY_SECS) <= now {
        Err(TokenError::Expired)
    } else if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        Err(TokenError::NotYetValid)
    } else {
        Ok(claims.clone())
    };
    assert_eq!(verify(SECRET, &token, now), want);
    if token.len() > MAX_TOKEN_LEN {
        return;
    }
    assert!(verify(b"other-secret", &token, now).is_err());
    // Any one-character change is refused (no malleable base64 or signature).
    let mut bytes = token.into_bytes();
    let at = usize::from(input.byte()) * 64 % bytes.len();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let with = alphabet[usize::from(input.byte()) % alphabet.len()];
    if bytes[at] != with {
        bytes[at] = with;
        let changed = String::from_utf8(bytes).expect("ASCII token");
        assert!(verify(SECRET, &changed, now).is_err(), "{changed}");
    }
}

/// Reads fuzz bytes as numbers and short strings (zeros once exhausted).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        *b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| n << 8 | u64::from(self.byte()))
    }

    fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 64).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8_lossy(s).into_owned()
    }
}
