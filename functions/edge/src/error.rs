//! The one place errors become HTTP responses: `{"error":{"code":"…","message":"…"}}`.
//!
//! Codes are stable snake_case identifiers clients and tests rely on (listed in
//! `openapi.yaml`); messages are for people and may change.

use comet_state::{ChannelError, CursorError, MessageError, StateError};
use http::StatusCode;

/// A request the function will not (or cannot) serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
    /// Seconds for a `Retry-After` header (503/429).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body. Messages may quote request data, so `<`, `>` and `&` are written as
    /// `\u003c`, `\u003e`, `\u0026` (the same JSON string): the body is inert even where it
    /// ends up inside HTML or a script (JSONP errors).
    pub fn body(&self) -> String {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        Self::bad_request("invalid_channel", e.to_string())
    }
}

impl From<CursorError> for ApiError {
    fn from(e: CursorError) -> Self {
        Self::bad_request("invalid_cursor", e.to_string())
    }
}

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::InvalidJson(_) => Self::bad_request("invalid_json", e.to_string()),
            MessageError::InvalidId(_) => Self::bad_request("invalid_message_id", e.to_string()),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Channel(c) => c.into(),
            StateError::Message(m) => m.into(),
            StateError::InvalidSession(_) => {
                Self::new(StatusCode::NOT_FOUND, "session_not_found", e.to_string())
            }
            // Storage trouble is ours, not the client's: 503 so clients and balancers retry.
            StateError::Store(_) | StateError::Contention(_) | StateError::Corrupt { .. } => {
                crate::store::reset_instance();
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
                .retry_after(1)
            }
        }
    }
}

impl From<comet_state::StoreError> for ApiError {
    fn from(e: comet_state::StoreError) -> Self {
        StateError::Store(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_never_carry_markup() {
        let e = ApiError::bad_request("invalid_channel", "bad name \"<script>&\"");
        let body = e.body();
        assert!(
            !body.contains('<') && !body.contains('>') && !body.contains('&'),
            "{body}"
        );
        let back: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(back["error"]["message"], "bad name \"<script>&\"");
    }
}
