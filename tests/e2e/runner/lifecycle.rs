//! Disconnect cancellation, many concurrent held requests with metrics, Ctrl-C drain.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn client_disconnect_cancels_guest() {
    // Cancel as soon as the client is gone (the default waits 65 s, longer than any poll).
    let mut opts = probe_opts();
    opts.args
        .extend(["--cancel-grace".to_string(), "0".to_string()]);
    let runner = Runner::start(&probe_manifest(), opts);
    // Control: left alone, the hold finishes.
    assert_eq!(
        get(&runner.url("/probe/hold?tag=control&ms=300")).await,
        (StatusCode::OK, "finished".into())
    );
    assert_eq!(
        get(&runner.url("/probe/kv/hold:control")).await,
        (StatusCode::OK, "finished".into())
    );

    let addr = runner.base_url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!("GET /probe/hold?tag=dropped&ms=1500 HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(socket);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        get(&runner.url("/probe/kv/hold:dropped")).await,
        (StatusCode::OK, "started".into()),
        "the guest kept running after its client went away (or never started)"
    );
}

/// Sum of every `comet_requests_total` sample on the admin `/metrics` page.
async fn requests_total(runner: &Runner) -> f64 {
    let (status, text) = get(&format!("{}/metrics", runner.admin_url())).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let samples: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("comet_requests_total"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    assert!(
        !samples.is_empty(),
        "no comet_requests_total in /metrics:\n{text}"
    );
    samples.iter().sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_concurrent_sleeps_succeed() {
    const REQUESTS: usize = 2000;
    let runner = start_probe();
    // Count at least one request so the counter exists before the burst.
    assert_eq!(get(&runner.url("/probe/hello")).await.0, StatusCode::OK);
    let before = requests_total(&runner).await;

    // No pooling: every request has its own connection, as held long-polls do.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let url = runner.url("/probe/sleep?ms=1000");
    let started = Instant::now();
    let requests = (0..REQUESTS).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            match client.get(&url).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    (status == StatusCode::OK && body == "slept 1000")
                        .then_some(())
                        .ok_or(format!("{status} {body}"))
                }
                Err(e) => Err(e.to_string()),
            }
        })
    });
    let results = futures::future::join_all(requests).await;
    let elapsed = started.elapsed();
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.expect("task").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} failed; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "took {elapsed:?}: sleeps were not concurrent"
    );

    let after = requests_total(&runner).await;
    assert!(
        after - before >= REQUESTS as f64,
        "comet_requests_total went {before} -> {after}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_drains_in_flight_requests() {
    let mut runner = start_probe();
    let url = runner.url("/probe/sleep?ms=800");
    let in_flight = tokio::spawn(async move { get(&url).await });
    tokio::time::sleep(Duration::from_millis(250)).await;
    runner.signal("INT");
    assert_eq!(
        in_flight.await.expect("task"),
        (StatusCode::OK, "slept 800".into())
    );
    let status = runner.wait_timeout(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "after Ctrl-C: exit {status:?}"
    );
}

/// The quickstart shape: `comet up` run from the app's directory with a relative manifest and
/// no `--state-dir`, so the state (and compile cache) go to `./.comet`.
#[tokio::test(flavor = "multi_thread")]
async fn serves_with_a_relative_manifest_and_the_default_state_dir() {
    use std::io::{BufRead, BufReader};

    crate::support::ensure_built();
    let app = tempfile::tempdir().expect("temp dir");
    let wasm =
        crate::support::workspace_root().join("target/wasm32-wasip2/release/comet_probe.wasm");
    std::fs::write(
        app.path().join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"rel\"\n\
             [[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\
             [component.probe]\nsource = {:?}\nkey_value_stores = [\"default\"]\n",
            wasm.to_str().expect("utf-8 path")
        ),
    )
    .expect("write manifest");
    let mut child = std::process::Command::new(crate::support::comet_bin())
        .args([
            "up",
            "-f",
            "spin.toml",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(app.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn comet");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Serving ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60));
    let answer = match &base {
        Ok(base) => Some(get(&format!("{base}/probe/kv/k")).await),
        Err(_) => None,
    };
    let _ = child.kill();
    let _ = child.wait();
    let base = base.expect("comet up with a relative manifest and no --state-dir did not serve");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert_eq!(
        answer.map(|(status, _)| status),
        Some(StatusCode::NOT_FOUND)
    );
    assert!(
        app.path().join(".comet/sqlite_key_value.db").exists(),
        "the default state dir is .comet beside the manifest"
    );
}
