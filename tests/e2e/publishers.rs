//! The backend publisher helpers in `publishers/` (Node and Python), run from here against a
//! real runner so `cargo test` is the one command that runs everything. Each language's suite
//! gets the runner's URL, its publish key and token secret, and `openapi.yaml` as JSON (so the
//! suites check every body against the schema without a YAML parser).
//!
//! A missing `node` or `python3` fails the test with one line saying so: the suites are part
//! of the project's tests, and skipping them would hide a broken helper.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Runner, RunnerOpts, workspace_root};

const KEY: &str = "e2e-publisher-key";
const SECRET: &str = "e2e-publisher-token-secret";

/// Longest a language suite may run (it retries with back-off, so a hang shows as a timeout).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// `openapi.yaml` converted to JSON in a temporary file.
fn openapi_json() -> tempfile::NamedTempFile {
    let path = workspace_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec: serde_json::Value = serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("openapi.yaml does not parse: {e}"));
    let mut file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("create temporary openapi.json");
    serde_json::to_writer(&mut file, &spec).expect("write openapi.json");
    file
}

/// A runner on the embedded store with publishing and subscribe tokens enabled.
fn runner() -> Runner {
    let opts = RunnerOpts::default()
        .env("SPIN_VARIABLE_PUBLISH_KEY", KEY)
        .env("SPIN_VARIABLE_TOKEN_SECRET", SECRET)
        .env("RUST_LOG", "warn");
    Runner::start(&workspace_root().join("spin.toml"), opts)
}

/// Fails with one clear line unless `program --version` runs.
fn require(program: &str, what: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "`{program}` is required to test {what} and was not found on PATH (install it; this test does not skip)"
    );
}

/// What a suite printed and how it ended.
struct SuiteRun {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args` in the workspace root with the runner's environment, within
/// [`SUITE_TIMEOUT`].
fn run_suite(program: &str, args: &[&str], runner: &Runner, openapi: &Path) -> SuiteRun {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .env("COMET_URL", runner.base_url())
        .env("COMET_PUBLISH_KEY", KEY)
        .env("COMET_TOKEN_SECRET", SECRET)
        .env("COMET_OPENAPI_JSON", openapi)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    let read = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped stdout")));
    let err = read(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let run = SuiteRun {
        success: status.is_some_and(|s| s.success()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "{program} {args:?} still running after {SUITE_TIMEOUT:?}\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// The number after `prefix` on the line that starts with it (`# pass 11` → 11).
fn count(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[test]
fn node_publisher_passes_against_the_runner() {
    require("node", "publishers/node");
    let runner = runner();
    let openapi = openapi_json();
    let run = run_suite(
        "node",
        &["--test", "publishers/node/test/"],
        &runner,
        openapi.path(),
    );
    // node's TAP summary: `# tests N`, `# pass N`, `# fail N`, …
    let summary: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("# ")).collect();
    println!("publishers/node:\n{}", summary.join("\n"));
    assert!(
        run.success,
        "node --test publishers/node/test/ failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let (tests, pass) = (count(&run.stdout, "# tests"), count(&run.stdout, "# pass"));
    assert!(
        tests.is_some_and(|n| n >= 10) && tests == pass,
        "expected at least 10 node tests, all passing; got tests={tests:?} pass={pass:?}\n{}",
        run.stdout
    );
}

#[test]
fn python_publisher_passes_against_the_runner() {
    require("python3", "publishers/python");
    let runner = runner();
    let openapi = openapi_json();
    let run = run_suite(
        "python3",
        &[
            "-m",
            "unittest",
            "discover",
            "-v",
            "-s",
            "publishers/python/tests",
        ],
        &runner,
        openapi.path(),
    );
    // unittest reports on stderr: one line per test with -v, then `Ran N tests in …` and `OK`.
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| {
            l.contains(" ... ")
                || l.starts_with("Ran ")
                || l.starts_with("OK")
                || l.starts_with("FAILED")
        })
        .collect();
    println!("publishers/python:\n{}", summary.join("\n"));
    assert!(
        run.success,
        "python3 -m unittest discover -s publishers/python/tests failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let ran = count(&run.stderr, "Ran ");
    assert!(
        ran.is_some_and(|n| n >= 10) && run.stderr.lines().any(|l| l.trim() == "OK"),
        "expected at least 10 Python tests and OK; got ran={ran:?}\n{}",
        run.stderr
    );
}
