//! The one place tests start things: builds, the `comet` runner, Redis (through
//! `comet-test-services`).
//!
//! The runner's stdout contract relied on here: once listening, it prints a line starting with
//! `Serving http://HOST:PORT` (as `spin up` does) and a line starting with
//! `Admin http://HOST:PORT` (the Prometheus `/metrics` listener), in either order.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The wasm component packages the tests run, built by one `cargo build`.
pub const WASM_PACKAGES: &[&str] = &[
    "comet-probe",
    "comet-fn-subscribe",
    "comet-fn-publish",
    "comet-fn-sockjs",
    "comet-fn-actions",
    "comet-fn-files",
];

/// How long the runner may take to print its `Serving`/`Admin` lines.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `comet` runner under test: this crate's wrapper binary around `comet_runner`, which
/// cargo builds with the test build's own feature set (a nested `cargo build -p comet-runner`
/// would unify features differently and compile wasmtime a second time).
pub fn comet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_comet-e2e-runner"))
}

/// The probe app's manifest.
pub fn probe_manifest() -> PathBuf {
    workspace_root().join("tests/probe-app/spin.toml")
}

/// Builds every wasm package, in one `cargo build`, once per test binary (installing the
/// `wasm32-wasip2` target first when the toolchain lacks it).
///
/// # Panics
///
/// If either build fails, with cargo's output (every later caller panics the same way).
pub fn ensure_built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        comet_runner::toolchain::ensure_target(&workspace_root(), "wasm32-wasip2")
            .map_err(|e| format!("{e:#}"))?;
        let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
        for package in WASM_PACKAGES {
            args.extend(["-p", package]);
        }
        cargo_build(&args)
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

fn cargo_build(args: &[&str]) -> Result<(), String> {
    let output = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("running cargo {args:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "cargo {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    ))
}

/// How to start a runner; `Default` is the embedded store in a fresh temporary state dir.
#[derive(Default, Clone)]
pub struct RunnerOpts {
    /// `--state-dir`; a fresh temporary directory when `None`.
    pub state_dir: Option<PathBuf>,
    /// `--runtime-config-file`.
    pub runtime_config: Option<PathBuf>,
    /// Extra environment variables (e.g. `SPIN_VARIABLE_API_SECRET`).
    pub env: Vec<(String, String)>,
    /// Extra arguments after the standard ones.
    pub args: Vec<String>,
    /// `--listen` address; `127.0.0.1:0` when `None`.
    pub listen: Option<String>,
}

impl RunnerOpts {
    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Uses `dir` as the state directory.
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Uses `file` as the runtime config.
    pub fn runtime_config(mut self, file: &Path) -> Self {
        self.runtime_config = Some(file.to_path_buf());
        self
    }
}

/// Output captured from a child process, shared with its reader threads.
type Captured = Arc<Mutex<String>>;

/// A running `comet up`, stopped (killed) on drop.
pub struct Runner {
    child: Child,
    base_url: String,
    admin_url: String,
    stdout: Captured,
    stderr: Captured,
    _temp_state: Option<tempfile::TempDir>,
}

/// Why [`Runner::try_start`] failed: the runner exited (or never announced itself).
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, if it exited.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl StartFailure {
    /// stdout and stderr together, for asserting on an error message wherever it was printed.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Runner {
    /// Starts `comet up -f manifest` on ephemeral ports and waits until it serves.
    ///
    /// # Panics
    ///
    /// If the runner exits or does not announce both URLs within 60 s, with its output.
    pub fn start(manifest: &Path, opts: RunnerOpts) -> Runner {
        match Runner::try_start(manifest, opts) {
            Ok(runner) => runner,
            Err(failure) => panic!(
                "comet up -f {} did not start (status {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                manifest.display(),
                failure.status,
                failure.stdout,
                failure.stderr
            ),
        }
    }

    /// Like [`Runner::start`], but returns the failure instead of panicking.
    pub fn try_start(manifest: &Path, opts: RunnerOpts) -> Result<Runner, StartFailure> {
        ensure_built();
        let (temp_state, state_dir) = match &opts.state_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::tempdir().expect("create temporary state dir");
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let mut command = Command::new(comet_bin());
        command
            .arg("up")
            .arg("-f")
            .arg(manifest)
            .arg("--listen")
            .arg(opts.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--admin-listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(&state_dir);
        if let Some(file) = &opts.runtime_config {
            command.arg("--runtime-config-file").arg(file);
        }
        command
            .args(&opts.args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            // Backtraces for panics, not for every `anyhow` error message.
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", comet_bin().display()));

        let stdout = Captured::default();
        let stderr = Captured::default();
        let (lines_tx, lines_rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("piped stdout"),
            stdout.clone(),
            Some(lines_tx),
        );
        let stderr_done = drain(
            child.stderr.take().expect("piped stderr"),
            stderr.clone(),
            None,
        );

        let deadline = Instant::now() + START_TIMEOUT;
        let (mut base_url, mut admin_url) = (None, None);
        while base_url.is_none() || admin_url.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(url) = announced_url(line, "Serving ") {
                        base_url = Some(url);
                    } else if let Some(url) = announced_url(line, "Admin ") {
                        admin_url = Some(url);
                    }
                }
                Err(_) => {
                    // stdout closed (it exited) or the deadline passed: report what it said.
                    let status = match child.try_wait() {
                        Ok(Some(status)) => Some(status),
                        _ => {
                            let _ = child.kill();
                            child.wait().ok()
                        }
                    };
                    let _ = stderr_done.join();
                    return Err(StartFailure {
                        status,
                        stdout: stdout.lock().expect("stdout lock").clone(),
                        stderr: stderr.lock().expect("stderr lock").clone(),
                    });
                }
            }
        }
        Ok(Runner {
            child,
            base_url: base_url.expect("seen"),
            admin_url: admin_url.expect("seen"),
            stdout,
            stderr,
            _temp_state: temp_state,
        })
    }

    /// `http://127.0.0.1:PORT` of the app listener (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:PORT` of the admin (metrics) listener.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The app URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// What the runner printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// What the runner printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Sends `signal` (a `kill -s` name such as `TERM` or `INT`) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -s {signal} {} failed",
            self.child.id()
        );
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops gracefully: SIGTERM, then waits up to 15 s (SIGKILL after that).
    ///
    /// Returns the exit status, or `None` if it had to be killed.
    pub fn stop(mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        self.signal("TERM");
        let status = self.wait_timeout(Duration::from_secs(15));
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }

    /// Kills with SIGKILL (no drain) and waits.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- comet ({}) stdout ---\n{}\n--- comet stderr ---\n{}",
                self.base_url,
                self.stdout(),
                self.stderr()
            );
        }
    }
}

/// `Serving http://127.0.0.1:1234` → `http://127.0.0.1:1234` (first word, no trailing `/`).
fn announced_url(line: &str, prefix: &str) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    if !rest.starts_with("http://") {
        return None;
    }
    let url = rest.split_whitespace().next()?;
    Some(url.trim_end_matches('/').to_owned())
}

/// Copies `pipe` into `buffer` line by line on a thread, forwarding lines to `lines` if given.
fn drain(
    pipe: impl Read + Send + 'static,
    buffer: Captured,
    lines: Option<mpsc::Sender<String>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    buffer.lock().expect("capture lock").push_str(&text);
                    if let Some(tx) = &lines {
                        // The receiver is gone once startup is over; keep draining anyway.
                        let _ = tx.send(text);
                    }
                }
            }
        }
    })
}

/// Runs `comet` with `args` to completion (at most 60 s), for commands expected to exit.
///
/// # Panics
///
/// If it cannot be spawned or runs longer than 60 s.
pub fn run_comet(args: &[&str], env: &[(&str, &str)]) -> Output {
    ensure_built();
    let mut child = Command::new(comet_bin())
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn comet");
    let stdout = Captured::default();
    let stderr = Captured::default();
    let out = drain(child.stdout.take().expect("stdout"), stdout.clone(), None);
    let err = drain(child.stderr.take().expect("stderr"), stderr.clone(), None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "comet {args:?} still running after 60 s\n--- stdout ---\n{}\n--- stderr ---\n{}",
                stdout.lock().expect("lock"),
                stderr.lock().expect("lock")
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = out.join();
    let _ = err.join();
    let stdout = stdout.lock().expect("lock").clone().into_bytes();
    let stderr = stderr.lock().expect("lock").clone().into_bytes();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The Redis of this test process: a throw-away `redis-server` on a free loopback port that
/// `comet-test-services` starts on first use (or `COMET_TEST_REDIS_URL`).
///
/// # Panics
///
/// If no Redis can be had, with one line saying why: Redis tests fail rather than skip.
pub fn redis_url() -> &'static str {
    comet_test_services::redis_url()
}

/// An async connection to the test Redis, for checking what the runner wrote.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis")
}

/// A name unique to this test run, for keys in shared stores such as Redis.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}
