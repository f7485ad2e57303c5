//! CPU time, resident memory, open descriptors and start time from Linux's
//! `/proc`: the bench report says with them which side of a benchmark
//! saturated, and `/metrics` exports this process's as `process_*`.
//! Elsewhere every reading is `None` (the report says "n/a", `/metrics`
//! leaves the metric out).

use std::path::Path;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pid {
    This,
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::This => "/proc/self".into(),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// Clock ticks per second of `/proc/*/stat` times.
fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// User plus system CPU seconds from a `stat` file. The command name in
/// parentheses may hold spaces, so fields are counted after the last `)`.
fn stat_cpu_s(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_s())
}

/// CPU seconds used by the whole process so far.
pub(crate) fn cpu_s(pid: Pid) -> Option<f64> {
    stat_cpu_s(Path::new(&format!("{}/stat", pid.dir())))
}

/// CPU seconds of each thread of this process, with its name.
pub(crate) fn threads_cpu_s() -> Option<Vec<(String, f64)>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if let Some(cpu) = stat_cpu_s(&dir.join("stat")) {
            threads.push((name.trim_end().to_string(), cpu));
        }
    }
    Some(threads)
}

/// CPU seconds the whole machine has been busy (all CPUs; everything but
/// idle and I/O wait), from the first line of `/proc/stat`.
pub(crate) fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map_while(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user)
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Some(busy / ticks_per_s())
}

/// Descriptors this process has open (entries of `/proc/self/fd`).
pub(crate) fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The soft limit on open descriptors (`Max open files` in `limits`).
pub(crate) fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// When this process started, in seconds since the Unix epoch: its start
/// in clock ticks after boot (field 22 of `stat`) plus the boot time
/// (`btime` in `/proc/stat`).
pub(crate) fn start_time_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let boot_s: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot_s + start_ticks / ticks_per_s())
}

/// Resident set size in bytes (`VmRSS`).
pub(crate) fn rss_bytes(pid: Pid) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{}/status", pid.dir())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        // Spin until this thread is charged a clock tick: on a busy
        // machine 30 ms of wall time may not be one.
        let this_thread = Path::new("/proc/thread-self/stat");
        let spin = std::time::Instant::now();
        while spin.elapsed().as_millis() < 30
            || (stat_cpu_s(this_thread) == Some(0.0) && spin.elapsed().as_secs() < 10)
        {
            std::hint::black_box(spin.elapsed());
        }
        assert!(cpu_s(Pid::This).unwrap() > 0.0);
        assert!(rss_bytes(Pid::This).unwrap() > 1 << 20);
        assert!(machine_busy_s().unwrap() >= cpu_s(Pid::This).unwrap() * 0.5);
        let threads = threads_cpu_s().unwrap();
        assert!(threads.iter().map(|(_, cpu)| cpu).sum::<f64>() > 0.0);
        assert_eq!(cpu_s(Pid::Other(u32::MAX)), None);
        assert!(open_fds().unwrap() >= 3, "stdin, stdout, stderr at least");
        assert!(max_fds().unwrap() >= open_fds().unwrap());
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = start_time_s().unwrap();
        assert!(
            started <= now_s + 1.0 && started > now_s - 86_400.0,
            "{started}"
        );
    }
}
