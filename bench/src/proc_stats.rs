//! Reading a process's memory and CPU time from `/proc`, for per-connection figures.

use std::time::Duration;

/// Resident set size of `pid` in bytes (`VmRSS`), 0 if unreadable.
pub fn rss_bytes(pid: u32) -> u64 {
    kib_field(&format!("/proc/{pid}/status"), "VmRSS:") * 1024
}

/// Proportional set size of `pid` in bytes, 0 if unreadable: shared pages are split among
/// the processes sharing them, so summing it over Nginx's workers counts its shared memory
/// once (`VmRSS` would count it per worker).
pub fn pss_bytes(pid: u32) -> u64 {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:") * 1024
}

/// A `Name:   123 kB` line of a `/proc` file, in KiB (0 if absent).
fn kib_field(path: &str, name: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// User + system CPU time consumed by `pid` so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the full line, 11 and 12 after ')'.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    // Linux fixes USER_HZ at 100 for every architecture we run on.
    100
}

/// This process's own CPU time.
pub fn self_cpu_time() -> Duration {
    cpu_time(std::process::id())
}
