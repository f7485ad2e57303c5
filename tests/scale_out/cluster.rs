//! The processes of a scale-out test: a real `nats-server` with JetStream
//! on loopback (alone, or three of them routed into a NATS cluster), and
//! tickfeed nodes run from the built binary. Every child
//! is killed when its guard is dropped, on success and on panic alike; the
//! scratch directory (broker store, node logs) is removed after a passing
//! test and kept, with its path printed, after a failing one.
#![allow(dead_code)] // each test binary that includes it uses a part

use super::common::{DEADLINE, Scratch, free_port, poll};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A log file for one process of the test, in its scratch directory.
fn log(scratch: &Scratch, name: &str) -> std::fs::File {
    std::fs::File::create(scratch.file(&format!("{name}.log"))).expect("create log file")
}

/// `$NATS_SERVER`, else `nats-server` on the PATH or in Debian's /usr/sbin.
fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("nats-server not found (PATH, /usr/sbin): install it with `apt-get install -y nats-server` or set NATS_SERVER=/path/to/nats-server")
        })
}

/// A nats-server with JetStream, its store in the scratch directory and a
/// monitoring port for `/connz`.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    store: PathBuf,
    log: PathBuf,
    /// Its name and routes when it is a member of a cluster.
    cluster_args: Vec<String>,
}

impl Broker {
    pub async fn start(scratch: &Scratch) -> Broker {
        let mut broker = Broker::new(scratch, "nats-server", "jetstream", Vec::new());
        broker.restart().await;
        broker
    }

    fn new(scratch: &Scratch, name: &str, store: &str, cluster_args: Vec<String>) -> Broker {
        Broker {
            child: None,
            port: free_port(),
            monitor: free_port(),
            store: scratch.dir.join(store),
            log: scratch.dir.join(format!("{name}.log")),
            cluster_args,
        }
    }

    /// `size` servers routed into the cluster `tickfeed`, each with its own
    /// JetStream store, once all are healthy (JetStream has its leader).
    pub async fn cluster(scratch: &Scratch, size: usize) -> Vec<Broker> {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route = |port: &u16| format!("nats://127.0.0.1:{port}");
        let mut members: Vec<Broker> = (0..size)
            .map(|at| {
                let routes: Vec<String> = route_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != at)
                    .map(|(_, port)| route(port))
                    .collect();
                let name = format!("nats-{}", at + 1);
                let args = vec![
                    "--name".into(),
                    name.clone(),
                    "--cluster_name".into(),
                    "tickfeed".into(),
                    "--cluster".into(),
                    route(&route_ports[at]),
                    "--routes".into(),
                    routes.join(","),
                ];
                Broker::new(scratch, &name, &format!("jetstream-{}", at + 1), args)
            })
            .collect();
        // JetStream elects its leader only once a majority runs: start all,
        // then wait for each.
        for member in &mut members {
            member.spawn();
        }
        for member in &members {
            member.wait_healthy().await;
        }
        members
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The running broker's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("a running broker")
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    /// Deletes the broker's store (JetStream's files) while it is down, as
    /// a broker that lost its disk.
    pub fn wipe_store(&self) {
        assert!(self.child.is_none(), "kill the broker first");
        std::fs::remove_dir_all(&self.store).expect("remove the JetStream store");
    }

    /// Starts the broker (again) on the same ports and store, and waits
    /// until it answers.
    pub async fn restart(&mut self) {
        self.spawn();
        self.wait_healthy().await;
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .arg("-l")
            .arg(&self.log)
            .args(&self.cluster_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
    }

    async fn wait_healthy(&self) {
        poll("nats-server to be healthy", || async {
            let response = reqwest::get(self.monitor_url("/healthz")).await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    fn monitor_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.monitor)
    }

    /// The tick subjects the connection named `name` subscribes to, sorted;
    /// `None` while no such connection exists.
    pub async fn tick_subjects(&self, name: &str) -> Option<Vec<String>> {
        let connz: Value = reqwest::get(self.monitor_url("/connz?subs=1"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let connection = connz["connections"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?;
        let mut subjects: Vec<String> = connection["subscriptions_list"]
            .as_array()
            .map(|subs| {
                subs.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| s.starts_with("tickfeed.ticks."))
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        subjects.sort();
        Some(subjects)
    }

    /// Whether a client connection named `name` is connected to this server.
    pub async fn serves(&self, name: &str) -> bool {
        self.tick_subjects(name).await.is_some()
    }

    /// Polls until the connection `name` subscribes to exactly `expected`.
    pub async fn wait_for_subjects(&self, name: &str, expected: &[&str]) {
        let mut last = None;
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let subjects = self.tick_subjects(name).await;
                if subjects.as_deref().is_some_and(|s| s == expected) {
                    return;
                }
                last = subjects;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "{name} should subscribe to {expected:?}; the broker last showed {last:?}"
        );
    }
}

/// A source node (`source_args` set its feed) and one edge, both on
/// `broker`, their logs `source.log` and `edge.log`.
pub async fn source_and_edge(
    scratch: &Scratch,
    broker: &Broker,
    source_args: &[&str],
) -> (Node, Node) {
    let source = Node::start(scratch, "source", "source", &broker.url(), source_args).await;
    let edge = Node::start(scratch, "edge", "edge", &broker.url(), &[]).await;
    (source, edge)
}

/// A tickfeed node (`tickfeed serve --nats ... --role ...`) in its own
/// process, listening on a free port.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
}

impl Node {
    pub async fn start(
        scratch: &Scratch,
        log_name: &str,
        role: &str,
        nats_url: &str,
        args: &[&str],
    ) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--nats",
                nats_url,
                "--role",
                role,
            ])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log(scratch, log_name))
            .kill_on_drop(true)
            .spawn()
            .expect("start tickfeed");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.expect("read tickfeed stdout") {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    return addr
                        .trim()
                        .parse::<SocketAddr>()
                        .expect("an address after `listening on`");
                }
            }
            panic!(
                "{log_name} exited before listening; see {}",
                scratch.dir.join(format!("{log_name}.log")).display()
            )
        })
        .await
        .unwrap_or_else(|_| panic!("{log_name} did not start listening within {DEADLINE:?}"));
        // Keep reading so that the node never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node { child, addr }
    }

    /// The node's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running node")
    }

    /// The name this node's NATS connection has in the broker's `/connz`.
    pub fn nats_name(&self, role: &str) -> String {
        format!("tickfeed-{role}@{}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.addr);
        reqwest::get(&url)
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON body")
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill tickfeed");
    }
}
