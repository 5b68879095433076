//! Streamed response and request bodies.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn streamed_response_arrives_incrementally() {
    let runner = start_probe();
    let resp = client()
        .get(runner.url("/probe/stream?n=3&ms=150"))
        .send()
        .await
        .expect("GET stream");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let (mut buffer, mut lines, mut arrivals) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(chunk) = stream.next().await {
        buffer.extend_from_slice(&chunk.expect("chunk"));
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end().to_owned());
            arrivals.push(Instant::now());
        }
    }
    assert_eq!(lines, ["chunk 1", "chunk 2", "chunk 3"]);
    let spread = arrivals[2] - arrivals[0];
    assert!(
        spread >= Duration::from_millis(200),
        "chunks 1 and 3 arrived {spread:?} apart: the body was buffered, not streamed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_request_body_streams_to_guest() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 512; // 32 MiB
    let runner = start_probe();
    let chunks = futures::stream::iter(
        (0..CHUNKS).map(|i| Ok::<_, std::io::Error>(vec![(i % 251) as u8; CHUNK])),
    );
    let (status, body) = post(
        &runner.url("/probe/count"),
        reqwest::Body::wrap_stream(chunks),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, (CHUNK * CHUNKS).to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_round_trips_request_body() {
    let runner = start_probe();
    let sent: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let resp = client()
        .post(runner.url("/probe/echo"))
        .body(sent.clone())
        .send()
        .await
        .expect("POST echo");
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.bytes().await.expect("echo body");
    assert_eq!(got.len(), sent.len(), "echoed length");
    assert!(got[..] == sent[..], "echoed bytes differ");
}
