//! The real `tickfeed` binary in a child process, for what only a separate
//! process shows: its resident memory and open descriptors (from /proc),
//! its log output, how it handles SIGTERM, and how it reads its settings
//! (options, environment, config file) and exits.
#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Generous bound for the child to start, stop, or settle.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(30);

pub struct ChildServer {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    log: PathBuf,
    /// The first `--token` or `TICKFEED_TOKENS` value, which `stats`
    /// presents.
    token: Option<String>,
}

impl ChildServer {
    /// Starts `tickfeed serve --listen 127.0.0.1:0 ARGS` with `envs`, its
    /// log (stderr) going to a file, and waits for its listening line.
    pub async fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> ChildServer {
        let from_args = args
            .iter()
            .position(|arg| *arg == "--token")
            .and_then(|at| args.get(at + 1));
        let from_env = envs
            .iter()
            .find(|(key, _)| *key == "TICKFEED_TOKENS")
            .map(|(_, value)| value);
        let token = from_args
            .or(from_env)
            .map(|tokens| tokens.split(',').next().unwrap_or_default().to_string());
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}.log", std::process::id()));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tickfeed"));
        for name in settings_in_env() {
            command.env_remove(name);
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("tickfeed binary starts");
        let pid = child.id().expect("child pid");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(CHILD_DEADLINE, lines.next_line())
            .await
            .expect("listening line in time")
            .expect("stdout readable")
            .unwrap_or_else(|| {
                panic!("tickfeed exited before listening; log in {}", log.display())
            });
        let addr = line
            .rsplit("://")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ChildServer {
            child,
            pid,
            addr,
            log,
            token,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Resident set size in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("child alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Open file descriptors (entries of /proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .expect("child alive")
            .count()
    }

    pub async fn stats(&self) -> Value {
        let url = format!("http://{}/api/stats", self.addr);
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("GET /api/stats")
            .json()
            .await
            .expect("JSON stats")
    }

    /// Polls `/api/stats` every 50 ms until `check` holds.
    pub async fn wait_for_stats(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + CHILD_DEADLINE;
        loop {
            let stats = self.stats().await;
            if check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        tokio::time::timeout(CHILD_DEADLINE, self.child.wait())
            .await
            .expect("tickfeed exits within the deadline after SIGTERM")
            .expect("exit status")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// This process's `TICKFEED_*` variables, which a child must not inherit:
/// each would set one of its options.
fn settings_in_env() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("TICKFEED_"))
        .collect()
}

/// Runs `tickfeed ARGS` to its end with only `envs` among `TICKFEED_*`
/// variables, and returns its exit status and output.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tickfeed"));
    for name in settings_in_env() {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("tickfeed runs")
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
