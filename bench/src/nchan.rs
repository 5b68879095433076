//! Starting and stopping Nginx with the Nchan module, the server Comet is measured against.
//!
//! The config comes from `bench/nchan/nginx.conf.template` (see `bench/nchan/README.md` for
//! why each setting); everything Nginx writes lives in a temporary prefix directory, and the
//! master runs in its own session (`setsid`) in the foreground so dropping this handle stops it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::{terminate, workspace_root};

/// A running `nginx` master and its workers.
pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    /// Writes the config, starts Nginx on a free port and waits until it accepts connections.
    ///
    /// # Errors
    /// Nginx or the Nchan module is missing (`apt-get install -y nginx-light
    /// libnginx-mod-nchan`), or Nginx exits before listening.
    pub fn start() -> Result<Self> {
        let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("nginx not found: apt-get install -y nginx-light libnginx-mod-nchan")?;
        let module = find_module()
            .context("the Nchan module is not installed: apt-get install -y libnginx-mod-nchan")?;
        let prefix = tempfile::Builder::new().prefix("nchan-bench-").tempdir()?;
        let port = free_port()?;
        let template =
            std::fs::read_to_string(workspace_root().join("bench/nchan/nginx.conf.template"))
                .context("reading bench/nchan/nginx.conf.template")?;
        let conf = template
            .replace("{{PREFIX}}", &prefix.path().display().to_string())
            .replace("{{PORT}}", &port.to_string())
            .replace("{{MODULE}}", &module);
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        for dir in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.path().join(dir))?;
        }
        let mut child = Command::new("setsid")
            .arg(nginx)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("nginx exited before listening: {status}");
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on 127.0.0.1:{port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _prefix: prefix,
        })
    }

    /// The master and its worker processes.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(master) {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM stops Nginx at once even with thousands of open streams (QUIT would wait).
        terminate(&mut self.child);
    }
}

fn find_module() -> Option<String> {
    [
        "/usr/lib/nginx/modules/ngx_nchan_module.so",
        "/usr/share/nginx/modules/ngx_nchan_module.so",
        "/usr/local/lib/nginx/modules/ngx_nchan_module.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .map(str::to_string)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
