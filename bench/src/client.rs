//! A lean HTTP/1.1 client: one hyper connection per simulated user.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An open keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// Parses `http://host:port` into a socket address.
///
/// # Errors
/// Not an `http://ip:port` URL.
pub fn addr_of(base: &str) -> Result<SocketAddr> {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("not an http://ip:port URL: {base}"))
}

impl Conn {
    /// Connects (TCP_NODELAY) and completes the HTTP/1.1 handshake.
    ///
    /// # Errors
    /// The connection fails.
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
        })
    }

    /// `GET path`, reading the whole body; returns status and body.
    ///
    /// # Errors
    /// The connection breaks.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let req = http::Request::get(path)
            .header(http::header::HOST, &self.host)
            .body(Full::new(Bytes::new()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// `POST path` with a JSON `body` and `Authorization: Bearer <bearer>`, reading the whole
    /// answer; returns status and body.
    ///
    /// # Errors
    /// The connection breaks.
    pub async fn post_json(
        &mut self,
        path: &str,
        bearer: &str,
        body: impl Into<Bytes>,
    ) -> Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let req = http::Request::post(path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {bearer}"))
            .body(Full::new(body.into()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// One sample of the runner's admin `/metrics` (a Prometheus line `name value`).
///
/// # Errors
/// The admin port does not answer 200 or has no such sample.
pub async fn admin_metric(admin: &str, name: &str) -> Result<f64> {
    let (status, body) = get_once(admin, "/metrics").await?;
    anyhow::ensure!(status == 200, "admin /metrics: {status}");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{name} not in /metrics"))
}

/// One-shot GET on a fresh connection.
///
/// # Errors
/// The request fails.
pub async fn get_once(base: &str, path: &str) -> Result<(u16, Bytes)> {
    Conn::open(addr_of(base)?).await?.get(path).await
}
