//! The real-client suite in `tests/node` (npm `eventsource`, JSONP in `node:vm`, headless
//! Chromium), run from here so `cargo test` is the one command that runs everything.

use std::process::Command;

use crate::support::{comet_bin, ensure_built, redis_url, workspace_root};

#[test]
fn node_and_browser_clients_pass() {
    ensure_built();
    let output = Command::new("bash")
        .arg(workspace_root().join("tests/node/run.sh"))
        .env("COMET_BIN", comet_bin())
        .env("COMET_REDIS_URL", redis_url())
        .output()
        .expect("running tests/node/run.sh (needs bash, node and npm)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Show the node summary in cargo's output either way.
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("node-tests:") || l.starts_with("ℹ"))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "tests/node/run.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
