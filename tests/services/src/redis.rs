//! A throw-away `redis-server` per test process.
//!
//! The server runs under a tiny `sh` supervisor whose standard input is a pipe held open by
//! this process: when the test process ends in any way (success, panic, `kill -9`), the pipe
//! closes, the supervisor's `read` returns, and it stops Redis. Without it every aborted test
//! run would leave a Redis behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The variable that names an existing Redis to use instead of a throw-away one.
const URL_VAR: &str = "COMET_TEST_REDIS_URL";

/// How long a fresh `redis-server` may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The supervisor: starts Redis with the given arguments, stops it once stdin closes.
const SUPERVISOR: &str = r#"redis-server "$@" </dev/null & pid=$!
read -r _ || true
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
exit 0"#;

/// The Redis URL the tests of this process use (`redis://127.0.0.1:PORT`), starting a
/// throw-away server on first use.
///
/// # Panics
///
/// When no Redis can be had: `redis-server` is missing and cannot be installed, or does not
/// answer `PING` in time. The message is one line saying what to do — tests that need Redis
/// fail, never skip.
pub fn redis_url() -> &'static str {
    static URL: OnceLock<Result<String, String>> = OnceLock::new();
    match URL.get_or_init(resolve) {
        Ok(url) => url,
        Err(message) => panic!("{message}"),
    }
}

fn resolve() -> Result<String, String> {
    if let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) {
        let addr = tcp_addr(&url)?;
        return match ping(addr) {
            Ok(()) => Ok(url),
            Err(e) => Err(format!("{URL_VAR}={url} does not answer PING: {e}")),
        };
    }
    ensure_redis_server()?;
    let mut last = String::new();
    // A free port can be taken between probing and binding; try a few.
    for _ in 0..5 {
        let port = free_port().map_err(|e| format!("no free loopback port for Redis: {e}"))?;
        match start(port) {
            Ok(()) => return Ok(format!("redis://127.0.0.1:{port}")),
            Err(e) => last = e,
        }
    }
    Err(format!("cannot start a throw-away redis-server: {last}"))
}

/// Starts `redis-server` on `port` under the supervisor and waits for `PING`.
fn start(port: u16) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", SUPERVISOR, "comet-test-redis"])
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .args(["--dir", &std::env::temp_dir().to_string_lossy()])
        .args(["--logfile", ""])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("running sh: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if ping(addr).is_ok() {
            keep_until_exit(child);
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server on port {port} exited ({status})"));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server on port {port} gave no PONG in {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Keeps the supervisor (and so its stdin pipe) for the rest of the process: statics are never
/// dropped, so the pipe closes — and Redis stops — exactly when the process ends.
fn keep_until_exit(child: Child) {
    static HELD: OnceLock<std::sync::Mutex<Vec<Child>>> = OnceLock::new();
    let held = HELD.get_or_init(Default::default);
    held.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(child);
}

/// Installs Redis with apt-get when it is missing and this is root on a Debian-like machine.
fn ensure_redis_server() -> Result<(), String> {
    if on_path("redis-server") {
        return Ok(());
    }
    let hint = "Redis tests need redis-server: install it (apt-get install -y redis-server) \
                or set COMET_TEST_REDIS_URL=redis://HOST:PORT";
    if !on_path("apt-get") || !is_root() {
        return Err(format!("redis-server not found on PATH. {hint}"));
    }
    eprintln!("comet-test-services: redis-server not found; installing it with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    // A fresh machine may have no package lists yet: update once and retry.
    if install()
        || (Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && install())
    {
        return Ok(());
    }
    Err(format!("apt-get install redis-server failed. {hint}"))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The `host:port` of a `redis://` URL (credentials, database and query ignored).
fn tcp_addr(url: &str) -> Result<SocketAddr, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("{URL_VAR}={url}: only redis:// URLs are supported"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:6379")
    };
    use std::net::ToSocketAddrs;
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{URL_VAR}={url}: cannot resolve {host_port}"))
}

fn ping(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = [0u8; 16];
    let n = stream.read(&mut reply)?;
    if reply[..n].starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "answered {:?}",
            String::from_utf8_lossy(&reply[..n])
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throw_away_redis_answers_and_is_the_same_for_the_whole_process() {
        let url = redis_url();
        assert_eq!(redis_url(), url, "one server per process");
        let addr = tcp_addr(url).expect("own url parses");
        ping(addr).expect("the server answers PING");
    }

    #[test]
    fn url_parsing_keeps_only_host_and_port() {
        assert_eq!(
            tcp_addr("redis://user:pw@127.0.0.1:7000/3").expect("parses"),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 7000))
        );
        assert_eq!(tcp_addr("redis://127.0.0.1").expect("parses").port(), 6379);
        assert!(tcp_addr("rediss://127.0.0.1:1").is_err());
    }
}
