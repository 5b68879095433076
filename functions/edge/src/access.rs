//! Who may read a channel: private channels need a subscribe token (docs/protocol.md §6).
//!
//! A channel is private when it starts with `private-` or matches a `private_channels`
//! pattern. Subscribers present a token as `token=` (EventSource and JSONP cannot send
//! headers) or `Authorization: Bearer`; it is verified once per request and checked for every
//! private channel the request names, on every transport and on every resume.

use comet_token::{Claims, TokenError};
use http::{HeaderMap, StatusCode, header};

use crate::config::Config;
use crate::error::ApiError;
use crate::http::Query;
use comet_state::Channel;

/// The subscriber's verified token, or why it was refused.
#[derive(Debug, Clone)]
pub enum Access {
    /// No token given.
    Anonymous,
    /// A valid token.
    Token(Claims),
    /// A token was given but refused.
    Refused(ApiError),
}

impl Access {
    /// Reads and verifies the request's token at Unix time `now`.
    pub fn from_request(query: &Query, headers: &HeaderMap, config: &Config, now: u64) -> Self {
        let given = query.get("token").map(str::to_owned).or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|t| t.trim().to_owned())
        });
        match given.filter(|t| !t.is_empty()) {
            None => Access::Anonymous,
            Some(token) => Self::from_token(&token, config, now),
        }
    }

    /// Verifies one token at Unix time `now`.
    pub fn from_token(token: &str, config: &Config, now: u64) -> Self {
        if config.token_secret.is_empty() {
            return Access::Refused(ApiError::new(
                StatusCode::FORBIDDEN,
                "token_required",
                "subscribe tokens are not enabled here (set the token_secret variable)",
            ));
        }
        match comet_token::verify(config.token_secret.as_bytes(), token, now) {
            Ok(claims) => Access::Token(claims),
            Err(e) => Access::Refused(token_error(&e)),
        }
    }

    /// Until when the token is accepted (Unix seconds: `exp` plus the clock-skew leeway),
    /// if one is in use.
    pub fn valid_until(&self) -> Option<u64> {
        match self {
            Access::Token(c) => Some(c.exp.saturating_add(comet_token::LEEWAY_SECS)),
            _ => None,
        }
    }

    /// Checks that this subscriber may read `channel`.
    ///
    /// # Errors
    /// 403 `token_required` (private, no token), 401 `invalid_token` / `token_expired`
    /// (a token was given and refused), 403 `channel_not_allowed` (valid token, other channels).
    pub fn check(&self, channel: &Channel, config: &Config) -> Result<(), ApiError> {
        if !is_private(channel, config) {
            return Ok(());
        }
        match self {
            Access::Anonymous => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "token_required",
                format!(
                    "channel {:?} is private and needs a subscribe token",
                    channel.as_str()
                ),
            )),
            Access::Refused(e) => Err(e.clone()),
            Access::Token(claims) if claims.allows(channel.as_str()) => Ok(()),
            Access::Token(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "channel_not_allowed",
                format!("the token does not cover channel {:?}", channel.as_str()),
            )),
        }
    }
}

/// Whether `channel` needs a token.
pub fn is_private(channel: &Channel, config: &Config) -> bool {
    channel.is_private()
        || config
            .private_channels
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => channel.as_str().starts_with(prefix),
                None => p == channel.as_str(),
            })
}

fn token_error(e: &TokenError) -> ApiError {
    let code = match e {
        TokenError::Expired => "token_expired",
        _ => "invalid_token",
    };
    ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use comet_token::{Claims, mint};

    const NOW: u64 = 1_800_000_000;

    fn config() -> Config {
        Config {
            token_secret: "s3cret".into(),
            private_channels: vec!["vip".into(), "team-*".into()],
            ..Config::default()
        }
    }

    fn token(channels: &[&str], exp: u64) -> String {
        let claims = Claims {
            sub: None,
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            exp,
            nbf: None,
        };
        mint(b"s3cret", &claims).expect("mint")
    }

    fn code(access: &Access, channel: &str) -> Option<&'static str> {
        access
            .check(&Channel::new(channel).expect("name"), &config())
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn private_channels_need_a_covering_token() {
        let c = config();
        let anon = Access::Anonymous;
        assert_eq!(code(&anon, "public"), None);
        for private in ["private-x", "vip", "team-1"] {
            assert_eq!(code(&anon, private), Some("token_required"), "{private}");
        }
        let ok = Access::from_token(&token(&["private-x", "team-*"], NOW + 60), &c, NOW);
        assert_eq!(ok.valid_until(), Some(NOW + 60 + comet_token::LEEWAY_SECS));
        assert_eq!(code(&ok, "private-x"), None);
        assert_eq!(code(&ok, "team-9"), None);
        assert_eq!(code(&ok, "vip"), Some("channel_not_allowed"));
        let expired = Access::from_token(&token(&["vip"], NOW - 100), &c, NOW);
        assert_eq!(code(&expired, "vip"), Some("token_expired"));
        assert_eq!(
            code(&expired, "public"),
            None,
            "public channels ignore tokens"
        );
        let forged = Access::from_token("a.b.c", &c, NOW);
        assert_eq!(code(&forged, "vip"), Some("invalid_token"));
        let disabled = Access::from_token(
            &token(&["vip"], NOW + 60),
            &Config {
                token_secret: String::new(),
                ..config()
            },
            NOW,
        );
        assert_eq!(code(&disabled, "vip"), Some("token_required"));
    }
}
