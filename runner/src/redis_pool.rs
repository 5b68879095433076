//! Outbound Redis connections shared across guest instances.
//!
//! Real Spin opens a multiplexed connection per guest `open`; doing that per request costs a TCP
//! handshake each time, so `comet` keeps one multiplexed connection per address for the whole
//! process. Blocking commands (`BLPOP`, `XREAD … BLOCK`, …) would stall that shared pipe for
//! everyone, so they run on a dedicated connection owned by the guest's handle instead.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

/// Process-wide cache of multiplexed connections by address.
#[derive(Clone, Default)]
pub struct RedisPool {
    shared: Arc<Mutex<HashMap<String, MultiplexedConnection>>>,
}

impl RedisPool {
    /// The shared multiplexed connection for `address`, connecting on first use.
    ///
    /// # Errors
    /// The address is invalid or Redis is unreachable.
    pub async fn shared(&self, address: &str) -> redis::RedisResult<MultiplexedConnection> {
        let mut map = self.shared.lock().await;
        if let Some(conn) = map.get(address) {
            return Ok(conn.clone());
        }
        let conn = connect(address).await?;
        map.insert(address.to_string(), conn.clone());
        Ok(conn)
    }

    /// Drops a cached connection after an I/O error so the next call reconnects.
    pub async fn forget(&self, address: &str) {
        self.shared.lock().await.remove(address);
    }
}

/// Opens a new multiplexed connection with no response timeout, as Spin does, so a blocking
/// command's own timeout decides how long it waits.
///
/// # Errors
/// The address is invalid or Redis is unreachable.
pub async fn connect(address: &str) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(address)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Whether a command blocks the connection server-side.
pub fn is_blocking(command: &str, args: &[Vec<u8>]) -> bool {
    let c = command.to_ascii_uppercase();
    match c.as_str() {
        "BLPOP" | "BRPOP" | "BLMOVE" | "BRPOPLPUSH" | "BZPOPMIN" | "BZPOPMAX" | "BLMPOP"
        | "BZMPOP" | "WAIT" | "WAITAOF" | "SUBSCRIBE" | "PSUBSCRIBE" | "MONITOR" => true,
        "XREAD" | "XREADGROUP" => args.iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK")),
        _ => false,
    }
}
