//! Headless Chromium for the dashboard tests, driven through chromedriver
//! with fantoccini. Owns starting chromedriver on a free port with a fresh
//! profile, lending the one browser to one test at a time, polling the page
//! with a deadline (never a fixed sleep), reading the page's error log, and
//! tearing everything down even when a test panics. Used only by
//! `tests/dashboard.rs`.
//!
//! One browser serves every test of the binary: starting Chromium took
//! most of each test's time, and each test starts on a blank page with
//! its own server (so its own origin and storage). The browser's session
//! task lives on a runtime of its own, since each test's runtime ends with
//! the test, and the browser ends with the test process, however it ends.

use crate::common::free_port;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard};

/// Debian's paths; override with TICKFEED_CHROMIUM / TICKFEED_CHROMEDRIVER.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Generous: CI shares two cores between the server, the browser and rustc.
pub const PATIENCE: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The viewport of the screenshots and the frame-rate measurement.
const WINDOW: (u32, u32) = (1440, 900);
/// Starts chromedriver (`$1 $2`) in a session and process group of its
/// own, then waits for its standard input to close, which happens when the
/// test process ends or drops the [`Browser`]: it then kills the group
/// (chromedriver and every Chromium process) and removes the profile (`$3`).
const WATCHDOG: &str = r#"setsid "$1" "$2" >/dev/null 2>&1 &
read -r _
kill -KILL "-$!"
wait
rm -rf "$3""#;

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
    /// The shell of [`WATCHDOG`]; closing its stdin ends the browser.
    watchdog: Child,
}

/// The browser, shared by the tests one at a time (an async lock: it is
/// held across awaits); `None` until the first test, or after a test
/// panicked with it.
static SHARED: Mutex<Option<Browser>> = Mutex::const_new(None);

/// Runs the browser's session task for as long as the process lives.
static BROWSER_RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the browser's runtime starts")
});

/// The shared browser, lent to one test: waits for the test before to
/// finish, and starts the browser on first use.
pub async fn lease() -> Lease {
    let mut shared = SHARED.lock().await;
    if shared.is_none() {
        let browser = BROWSER_RUNTIME
            .spawn(Browser::launch())
            .await
            .expect("the browser starts");
        *shared = Some(browser);
    }
    Lease { shared }
}

/// The browser while one test uses it. Derefs to [`Browser`].
pub struct Lease {
    shared: MutexGuard<'static, Option<Browser>>,
}

impl Lease {
    /// Leaves the page for a blank one, its storage cleared and the window
    /// at its usual size, for the next test. Tests call this at the end,
    /// before stopping their server.
    pub async fn release(self) {
        let _ = self
            .client
            .execute("localStorage.clear(); sessionStorage.clear();", vec![])
            .await;
        self.client.goto("about:blank").await.expect("a blank page");
        self.client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .expect("the usual window size");
    }
}

impl std::ops::Deref for Lease {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        self.shared.as_ref().expect("a leased browser")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // A test that failed may have left the browser in any state: end
        // it, and the next test starts a fresh one.
        if std::thread::panicking() {
            self.shared.take();
        }
    }
}

impl Browser {
    /// Start chromedriver and a headless Chromium with a fresh profile.
    async fn launch() -> Browser {
        let chromium = tool("TICKFEED_CHROMIUM", CHROMIUM);
        let chromedriver = tool("TICKFEED_CHROMEDRIVER", CHROMEDRIVER);
        let port = free_port();
        let profile =
            std::env::temp_dir().join(format!("tickfeed-chromium-{}-{port}", std::process::id()));
        // In a process group of its own, so that a Ctrl-C meant for the
        // tests cannot stop it before it has cleaned up.
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "watchdog"])
            .arg(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(&profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        Browser {
            client: connect(port, &chromium, &profile).await,
            watchdog,
        }
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
        // Closing its stdin tells the watchdog to end the browser.
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
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
    ];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
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
