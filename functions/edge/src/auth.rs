//! The publish key check: `Authorization: Bearer <publish_key>`, compared in constant time.

use http::{HeaderMap, StatusCode, header};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::ApiError;

/// Checks the bearer token against the publish key.
///
/// # Errors
/// 503 `publishing_disabled` when no key is configured (never an open door); 401
/// `unauthorized` when the header is missing or wrong. The key is never echoed.
pub fn require_publish_key(headers: &HeaderMap, config: &Config) -> Result<(), ApiError> {
    if config.publish_key.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "publishing_disabled",
            "set the publish_key variable (SPIN_VARIABLE_PUBLISH_KEY) to enable publishing",
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(config.publish_key.as_bytes()).into();
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong publish key (Authorization: Bearer <publish_key>)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().expect("header"));
        }
        h
    }

    #[test]
    fn accepts_only_the_exact_key() {
        let config = Config {
            publish_key: "s3cret".into(),
            ..Config::default()
        };
        assert!(require_publish_key(&headers(Some("Bearer s3cret")), &config).is_ok());
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("s3cret"),
        ] {
            let e = require_publish_key(&headers(bad), &config).expect_err("rejected");
            assert_eq!(e.code, "unauthorized");
        }
        let open = Config::default();
        assert_eq!(
            require_publish_key(&headers(Some("Bearer ")), &open)
                .expect_err("disabled")
                .code,
            "publishing_disabled"
        );
    }
}
