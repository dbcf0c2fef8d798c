//! Facts about this host the drivers report and consensus never sees: wall-clock time and
//! the process's peak memory.

/// Wall-clock milliseconds since the Unix epoch (for status and benchmarks only; consensus
/// never sees it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Peak resident memory of this process (VmHWM), KiB; 0 where /proc is unavailable.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}
