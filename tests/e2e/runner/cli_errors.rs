//! Startup errors a user sees: bad manifest, missing `.wasm`, port in use.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_manifest_names_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"unterminated\n",
    )
    .expect("write");
    let output = run_comet(
        &[
            "up",
            "-f",
            manifest.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "bad manifest exited {}:\n{text}",
        output.status
    );
    assert!(
        text.contains(manifest.to_str().expect("utf-8")),
        "error does not name {}:\n{text}",
        manifest.display()
    );
    assert!(
        text.contains("line 3") || text.contains(":3:"),
        "error does not name line 3:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_wasm_suggests_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n[application]\nname = \"nowasm\"\n\n[[trigger.http]]\nroute = \"/...\"\n\
         component = \"gone\"\n\n[component.gone]\nsource = \"target/gone.wasm\"\n\n\
         [component.gone.build]\ncommand = \"true\"\n",
    )
    .expect("write");
    let failure = match Runner::try_start(&manifest, RunnerOpts::default()) {
        Ok(runner) => panic!("started at {} without its .wasm", runner.base_url()),
        Err(failure) => failure,
    };
    assert!(
        failure.status.is_some_and(|s| !s.success()),
        "exit {:?}\n{}",
        failure.status,
        failure.output()
    );
    let text = failure.output();
    assert!(
        text.contains("gone.wasm"),
        "error does not name the missing file:\n{text}"
    );
    assert!(
        text.contains("--build"),
        "error does not suggest --build:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let opts = RunnerOpts {
        listen: Some(addr.clone()),
        ..probe_opts()
    };
    let failure = match Runner::try_start(&probe_manifest(), opts) {
        Ok(runner) => panic!("started at {} although {addr} is taken", runner.base_url()),
        Err(failure) => failure,
    };
    assert!(
        failure.status.is_some_and(|s| !s.success()),
        "exit {:?}\n{}",
        failure.status,
        failure.output()
    );
    let text = failure.output();
    assert!(text.contains(&addr), "error does not name {addr}:\n{text}");
    assert!(
        text.to_lowercase().contains("in use"),
        "error does not say the address is in use:\n{text}"
    );
    drop(taken);
}
