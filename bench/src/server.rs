//! Starting and stopping the `comet` runner under test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running `comet up`.
pub struct Runner {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Admin base URL (`/metrics`).
    pub admin: String,
    /// Time from spawn to the `Serving` line.
    pub startup: Duration,
}

/// The workspace root (bench/ is one level down).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl Runner {
    /// Starts `target/release/comet up` on free ports, in its own session, and waits until it
    /// serves.
    ///
    /// # Errors
    /// The binary is missing or the runner exits before serving.
    pub fn start(
        manifest: &Path,
        state_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        // COMET_BIN: another build of the same CLI (e.g. `target/release/comet-e2e-runner`).
        let bin = std::env::var_os("COMET_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/release/comet"));
        if !bin.exists() {
            bail!(
                "{} missing: run `cargo build --release -p comet-runner` first",
                bin.display()
            );
        }
        let started = Instant::now();
        let mut cmd = Command::new("setsid");
        cmd.arg(&bin)
            .args(["up", "-f"])
            .arg(manifest)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--state-dir",
            ])
            .arg(state_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning comet")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut base = None;
        let mut admin = None;
        while base.is_none() || admin.is_none() {
            let Some(line) = lines.next() else {
                bail!("comet exited before serving");
            };
            let line = line?;
            if let Some(u) = line.strip_prefix("Serving ") {
                base = Some(u.trim().to_string());
            } else if let Some(u) = line.strip_prefix("Admin ") {
                admin = Some(u.trim().to_string());
            }
        }
        let startup = started.elapsed();
        // Keep draining stdout so the runner never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            child,
            base: base.unwrap_or_default(),
            admin: admin.unwrap_or_default(),
            startup,
        })
    }

    /// The runner's pid (the `setsid` exec keeps the pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Stops a server the harness started: SIGTERM (a clean shutdown), then SIGKILL after 5 s.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
