//! Outbound HTTP: service chaining and `allowed_outbound_hosts`.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn service_chaining_reaches_component() {
    let runner = start_probe();
    assert_eq!(
        get(&runner.url("/probe/chain")).await,
        (StatusCode::OK, "hello".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_to_host_not_allowed_is_denied() {
    let runner = start_probe();
    let (status, body) = get(&runner.url("/probe/fetch?url=http%3A%2F%2Fexample.invalid%2F")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.to_lowercase().contains("denied"),
        "not a denial: {body:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_to_allowed_host_works() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.expect("read");
            assert!(n > 0, "connection closed mid-request");
            request.extend_from_slice(&buf[..n]);
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nlocal";
        socket.write_all(reply).await.expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });
    let runner = start_probe();
    let url = format!("http%3A%2F%2F{addr}%2Fupstream");
    let (status, body) = get(&runner.url(&format!("/probe/fetch?url={url}"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "200\nlocal"));
    let request = server.await.expect("server task");
    assert!(
        request.starts_with("GET /upstream HTTP/1.1"),
        "upstream saw {request:?}"
    );
}
