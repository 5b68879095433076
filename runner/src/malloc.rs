//! glibc malloc tuning for a process holding many connections.

/// Restarts the process once with `MALLOC_ARENA_MAX=2` unless the variable is already set.
///
/// glibc gives each thread that meets contention its own arena (up to 8 per core), and memory
/// a connection frees on one tokio worker is not reused by another: with thousands of held
/// connections that costs about a quarter of the runner's memory (bench/RESULTS.md: 24 →
/// 19 KiB per held SSE connection). glibc reads the variable only at start-up, hence the
/// `exec`; the pid stays the same. Set `MALLOC_ARENA_MAX` yourself to choose another value.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` only returns on failure; then the process simply goes on with glibc's default.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}
