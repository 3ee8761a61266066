//! What the kernel says about this process: peak resident memory and CPU time.

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Peak resident set size in bytes (`VmHWM`), if the kernel reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    peak_rss_of("self")
}

/// Peak resident set size in bytes of process `pid` (`self` for this one).
pub fn peak_rss_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU seconds of this process so far (all threads).
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| stat_cpu_seconds(&stat))
        .unwrap_or(0.0)
}

/// User and system CPU seconds of a `/proc/…/stat` line; `None` if it does not parse.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rfind(')').map(|i| &stat[i + 2..])?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some((ticks(11) + ticks(12)) / USER_HZ)
}

/// Bytes as MiB for display.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Resident set size in bytes now (`VmRSS`), if the kernel reports it.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU seconds so far of each of this process's threads whose name starts
/// with one of `prefixes` (`/proc/self/task/*/comm`, at most 15 characters of the name), by
/// thread id. A thread that exits takes its count with it: compare two readings thread by
/// thread ([`cpu_seconds_since`]).
pub fn thread_cpu_seconds(prefixes: &[&str]) -> std::collections::HashMap<u64, f64> {
    let mut threads = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if !prefixes.iter().any(|p| name.trim_end().starts_with(p)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some(seconds) = stat_cpu_seconds(&stat) else {
            continue;
        };
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        threads.insert(tid, seconds);
    }
    threads
}

/// CPU seconds the threads of `now` spent since `before` (a thread new since counts whole).
pub fn cpu_seconds_since(
    before: &std::collections::HashMap<u64, f64>,
    now: &std::collections::HashMap<u64, f64>,
) -> f64 {
    now.iter()
        .map(|(tid, cpu)| cpu - before.get(tid).copied().unwrap_or(0.0))
        .sum()
}
