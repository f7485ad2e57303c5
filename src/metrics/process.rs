//! The `process_*` metrics every Prometheus client library exports, read
//! from `/proc/self` (`procfs`) per scrape. Off Linux the readings are
//! missing and so are these metrics.

use crate::procfs::{self, Pid};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Registers what this process's `/proc` entries say now.
pub(crate) fn register(registry: &mut Registry) {
    if let Some(cpu_s) = procfs::cpu_s(Pid::This) {
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            ConstCounter::new(cpu_s),
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            procfs::rss_bytes(Pid::This).map(|b| b as f64),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            procfs::open_fds().map(|n| n as f64),
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            procfs::max_fds().map(|n| n as f64),
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            procfs::start_time_s(),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            registry.register(name, help, ConstGauge::new(value));
        }
    }
}
