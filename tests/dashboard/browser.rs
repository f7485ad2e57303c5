//! Headless Chromium for the dashboard tests, driven through chromedriver
//! with fantoccini. Owns starting chromedriver on a free port with a fresh
//! profile, polling the page with a deadline (never a fixed sleep), reading
//! the page's error log, and tearing everything down even when a test
//! panics. Used only by `tests/dashboard.rs`.

use crate::common::free_port;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's paths; override with TICKFEED_CHROMIUM / TICKFEED_CHROMEDRIVER.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: CI shares two cores between the server, the browser and rustc.
pub const PATIENCE: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The viewport of the screenshots and the frame-rate measurement.
const WINDOW: &str = "--window-size=1440,900";

fn tool(env: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_string()));
    assert!(
        path.exists(),
        "{} not found: the dashboard tests need Debian's chromium and chromium-driver \
         (`apt-get install -y chromium chromium-driver`; .ci/run installs them), \
         or set {env} to another binary",
        path.display()
    );
    path
}

/// A chromedriver process and one browser session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Start chromedriver and a headless Chromium with a fresh profile.
    pub async fn launch() -> Browser {
        let chromium = tool("TICKFEED_CHROMIUM", CHROMIUM);
        let chromedriver = tool("TICKFEED_CHROMEDRIVER", CHROMEDRIVER);
        let port = free_port();
        let profile =
            std::env::temp_dir().join(format!("tickfeed-chromium-{}-{port}", std::process::id()));
        // Its own process group, so teardown can end chromedriver and the
        // browsers it started in one signal, even after a panic.
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        Browser {
            client: connect(port, &chromium, &profile).await,
            driver,
            profile,
        }
    }

    /// End the session and chromedriver. Tests call this at the end; a
    /// panicking test gets the same through Drop, less politely.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Run `script` (a function body; `return` its value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, vec![]).await
    }

    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n--- script ---\n{script}"))
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Poll `script` until it returns something truthy, and return that.
    /// Panics after `PATIENCE` with `what`, the last value and the page's state.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.js(script).await;
            if truthy(&value) {
                return value;
            }
            if Instant::now() > deadline {
                let state = self.js(STATE_JS).await;
                panic!(
                    "timed out after {PATIENCE:?} waiting for {what}\nlast value: {value}\npage: {state}"
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Errors the page recorded (js/errors.js): uncaught errors, rejections,
    /// failed loads and console.error calls.
    pub async fn page_errors(&self) -> Vec<String> {
        let v = self
            .js("return window.__tickfeedErrors || ['js/errors.js did not run'];")
            .await;
        serde_json::from_value(v).expect("an array of strings")
    }

    pub async fn assert_no_page_errors(&self) {
        let errors = self.page_errors().await;
        assert!(
            errors.is_empty(),
            "the page logged errors:\n{}",
            errors.join("\n")
        );
    }

    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot's directory");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Negative pid: the whole process group (chromedriver and Chromium).
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// What the page reports about itself, for failure messages.
const STATE_JS: &str = "return { status: document.querySelector('#status')?.textContent, \
    stats: window.tickfeed?.stats(), errors: window.__tickfeedErrors };";

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        // Without these Chromium waits on the network, which this machine lacks.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        WINDOW,
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let caps = json!({
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let caps = caps.as_object().expect("capabilities object").clone();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) if Instant::now() > deadline => {
                panic!("chromedriver on port {port} never accepted a session: {e}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}
