//! `spin:variables@3`: `GET /probe/var/{name}` → the value, or the error variant
//! (404 `undefined: …`, 400 `invalid_name: …`, 500 `provider: …` / `other: …`).

use http::StatusCode;
use spin_sdk::variables::Error;

use crate::{Resp, text};

pub(crate) async fn get(name: &str) -> Resp {
    match spin_sdk::variables::get(name).await {
        Ok(value) => text(StatusCode::OK, value),
        Err(Error::Undefined(msg)) => text(StatusCode::NOT_FOUND, format!("undefined: {msg}")),
        Err(Error::InvalidName(msg)) => {
            text(StatusCode::BAD_REQUEST, format!("invalid_name: {msg}"))
        }
        Err(Error::Provider(msg)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("provider: {msg}"),
        ),
        Err(Error::Other(msg)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("other: {msg}")),
    }
}
