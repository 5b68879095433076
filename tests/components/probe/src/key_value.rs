//! `spin:key-value@3` routes.
//!
//! - `GET /probe/kv/{key}?store=label` → the value, or 404 `not found`
//! - `PUT /probe/kv/{key}?store=label` (body = value) → `ok`
//! - `DELETE /probe/kv/{key}?store=label` → `ok`
//! - `GET /probe/kv-open?store=label` → `ok`, or the open error (403 `access_denied`, 404
//!   `no_such_store`, 500 otherwise)
//! - `GET /probe/kv-keys?store=label` → sorted JSON array of every key
//!
//! `store` defaults to `default`.

use http::{Method, StatusCode};
use spin_sdk::http::Request;
use spin_sdk::key_value::{Error, Store};

use crate::{Query, Resp, json, read_body, response, text};

/// Opens `label`, or returns `Err(value)`, the store-error response.
pub(crate) async fn open_store(label: &str) -> Result<Store, Resp> {
    Store::open(label).await.map_err(error_response)
}

pub(crate) async fn route(method: &Method, key: &str, query: &Query, req: Request) -> Resp {
    let store = match open_store(query.get("store").unwrap_or("default")).await {
        Ok(store) => store,
        Err(resp) => return resp,
    };
    let result = match *method {
        Method::GET => match store.get(key).await {
            Ok(Some(value)) => {
                return response(StatusCode::OK, "application/octet-stream", value.into());
            }
            Ok(None) => return text(StatusCode::NOT_FOUND, "not found"),
            Err(e) => Err(e),
        },
        Method::PUT | Method::POST => {
            let value = match read_body(req).await {
                Ok(value) => value,
                Err(resp) => return resp,
            };
            store.set(key, &value).await
        }
        Method::DELETE => store.delete(key).await,
        _ => return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    };
    match result {
        Ok(()) => text(StatusCode::OK, "ok"),
        Err(e) => error_response(e),
    }
}

pub(crate) async fn open(query: &Query) -> Resp {
    match open_store(query.get("store").unwrap_or("default")).await {
        Ok(_) => text(StatusCode::OK, "ok"),
        Err(resp) => resp,
    }
}

pub(crate) async fn keys(query: &Query) -> Resp {
    let store = match open_store(query.get("store").unwrap_or("default")).await {
        Ok(store) => store,
        Err(resp) => return resp,
    };
    match store.get_keys().await.collect().await {
        Ok(mut keys) => {
            keys.sort();
            json(StatusCode::OK, &keys.into())
        }
        Err(e) => error_response(e),
    }
}

/// Writes `value` under `key` in the default store; used by `/probe/hold`.
pub(crate) async fn set_default(key: &str, value: &str) -> Result<(), Resp> {
    let store = open_store("default").await?;
    store
        .set(key, value.as_bytes())
        .await
        .map_err(error_response)
}

/// The response for a store error: a stable variant name and a fitting status.
pub(crate) fn error_response(e: Error) -> Resp {
    match e {
        Error::AccessDenied => text(StatusCode::FORBIDDEN, "access_denied"),
        Error::NoSuchStore => text(StatusCode::NOT_FOUND, "no_such_store"),
        Error::StoreTableFull => text(StatusCode::SERVICE_UNAVAILABLE, "store_table_full"),
        Error::Other(msg) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("other: {msg}")),
    }
}
