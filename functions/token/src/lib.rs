//! Subscribe tokens for private channels (docs/protocol.md §6).
//!
//! A token is a compact JWT signed with HMAC-SHA256 (`alg: HS256`) under the deployment's
//! `token_secret`, so any backend with a JWT library (or twenty lines of HMAC) can mint one:
//!
//! ```text
//! base64url({"alg":"HS256","typ":"JWT"}) . base64url(claims) . base64url(HMAC-SHA256(secret, first two parts))
//! claims = {"sub": "user-42", "channels": ["private-user-42", "private-team-7-*"], "exp": 1767225600, "nbf": 1767222000}
//! ```
//!
//! `channels` entries are exact names, or prefixes ending in `*`. `exp` (Unix seconds) is
//! required; `nbf` is optional. Only `HS256` is accepted: `none` and every other algorithm are
//! refused, and the signature is compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Longest token accepted (bytes): bounds parsing work on hostile input.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Most channel patterns in one token.
pub const MAX_TOKEN_CHANNELS: usize = 256;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who it was issued to (for logs and the application; not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Channel names, or prefixes ending in `*`.
    pub channels: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// Whether the token covers `channel`.
    pub fn allows(&self, channel: &str) -> bool {
        self.channels.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => channel.starts_with(prefix),
            None => p == channel,
        })
    }
}

/// Why a token was refused. Messages never include the token or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, too long, or claims of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Any algorithm but HS256 (including `none`).
    #[error("unsupported token algorithm (only HS256 is accepted)")]
    Algorithm,
    /// The signature does not match.
    #[error("bad token signature")]
    Signature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// Mints a token for `claims`.
///
/// # Errors
/// Never in practice (claims always serialise); typed for callers' convenience.
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, TokenError> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = serde_json::to_vec(claims).map_err(|_| TokenError::Malformed("claims"))?;
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// Verifies `token` at Unix time `now` and returns its claims.
///
/// # Errors
/// [`TokenError`] naming the first check that failed: shape, algorithm, signature, then time.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| TokenError::Malformed("header is not JSON"))?;
    if header.alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let mut m = mac(secret);
    let signing_input = &token[..token.len() - signature.len() - 1];
    m.update(signing_input.as_bytes());
    let expected = m.finalize().into_bytes();
    if !bool::from(expected.as_slice().ct_eq(&given)) {
        return Err(TokenError::Signature);
    }
    let claims: Claims = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed("claims are not base64url"))?,
    )
    .map_err(|_| TokenError::Malformed("claims need channels (strings) and exp (seconds)"))?;
    if claims.channels.len() > MAX_TOKEN_CHANNELS {
        return Err(TokenError::Malformed("too many channels"));
    }
    if claims.exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(TokenError::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret";
    const NOW: u64 = 1_800_000_000;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: Some("u1".into()),
            channels: vec!["private-a".into(), "private-team-*".into()],
            exp,
            nbf: None,
        }
    }

    #[test]
    fn round_trips_and_matches_channels() {
        let token = mint(SECRET, &claims(NOW + 60)).expect("mint");
        let got = verify(SECRET, &token, NOW).expect("valid");
        assert_eq!(got, claims(NOW + 60));
        assert!(got.allows("private-a"));
        assert!(got.allows("private-team-7"));
        assert!(!got.allows("private-ab"));
        assert!(!got.allows("private-b"));
    }

    #[test]
    fn a_known_token_verifies() {
        // Minted independently (python: hmac.new(b"test-secret", input, sha256)), so the
        // documented algorithm and this code agree.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGFubmVscyI6WyJwcml2YXRlLWEiXSwiZXhwIjoxODAwMDAwMDYwfQ.0R0ZwMoVZDOItLh-Xw7ciUAaXKvA0JKHKMz9uJx18Wg";
        let got = verify(SECRET, token, NOW).expect("valid");
        assert_eq!(got.channels, ["private-a"]);
        assert_eq!(got.exp, NOW + 60);
    }

    #[test]
    fn refuses_bad_tokens() {
        let good = mint(SECRET, &claims(NOW + 60)).expect("mint");
        let (input, _) = good.rsplit_once('.').expect("dot");
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            input.split('.').nth(1).expect("body")
        );
        let other_alg = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#),
            input.split('.').nth(1).expect("body"),
            good.rsplit('.').next().expect("sig")
        );
        let no_exp = {
            let body = URL_SAFE_NO_PAD.encode(br#"{"channels":["private-a"]}"#);
            let head = input.split('.').next().expect("head");
            let mut m = mac(SECRET);
            m.update(format!("{head}.{body}").as_bytes());
            format!(
                "{head}.{body}.{}",
                URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
            )
        };
        let cases: Vec<(String, TokenError)> = vec![
            (
                "".into(),
                TokenError::Malformed("expected three dot-separated parts"),
            ),
            (
                "e30.e30.".into(),
                TokenError::Malformed("header is not JSON"),
            ),
            (
                "a.b".into(),
                TokenError::Malformed("expected three dot-separated parts"),
            ),
            (
                "a.b.c.d".into(),
                TokenError::Malformed("expected three dot-separated parts"),
            ),
            (
                "!.b.c".into(),
                TokenError::Malformed("header is not base64url"),
            ),
            (
                "x".repeat(MAX_TOKEN_LEN + 1),
                TokenError::Malformed("too long"),
            ),
            (none_alg, TokenError::Algorithm),
            (other_alg, TokenError::Algorithm),
            (format!("{input}.AAAA"), TokenError::Signature),
            (
                format!("{input}x.{}", good.rsplit('.').next().expect("s")),
                TokenError::Signature,
            ),
            (
                mint(b"other-secret", &claims(NOW + 60)).expect("mint"),
                TokenError::Signature,
            ),
            (
                no_exp,
                TokenError::Malformed("claims need channels (strings) and exp (seconds)"),
            ),
            (
                mint(SECRET, &claims(NOW - LEEWAY_SECS)).expect("mint"),
                TokenError::Expired,
            ),
            (
                mint(
                    SECRET,
                    &Claims {
                        nbf: Some(NOW + LEEWAY_SECS + 1),
                        ..claims(NOW + 600)
                    },
                )
                .expect("mint"),
                TokenError::NotYetValid,
            ),
        ];
        for (token, want) in cases {
            assert_eq!(verify(SECRET, &token, NOW), Err(want), "{token:?}");
        }
        // Within the leeway both ways.
        assert!(verify(SECRET, &mint(SECRET, &claims(NOW - 1)).expect("m"), NOW).is_ok());
    }
}
