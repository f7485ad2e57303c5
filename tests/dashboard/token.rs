//! The dashboard against a server started with `--token`: it asks for the
//! token once, then streams with it (and loads the time & sales history
//! with it), and the token shows up neither in the page's address nor in
//! the server's log, even at trace level; a token the server refuses is
//! forgotten and asked for again. Part of `tests/dashboard.rs`.

use super::{wait_live, wait_received};
use crate::browser::{self, Browser};
use crate::common::start_server;
use crate::process::ChildServer;
use fantoccini::Locator;
use serde_json::json;

const TOKEN: &str = "tf-dash-8e2f51c7";

/// Waits until the prompt is open for the `times`-th time.
async fn wait_prompt(b: &Browser, times: u64) {
    b.wait_for(
        &format!("the token prompt, time {times}"),
        &format!(
            "return document.querySelector('#token-dialog').open \
             && tickfeed.stats().prompts === {times};"
        ),
    )
    .await;
}

async fn enter_token(b: &Browser, token: &str) {
    b.client
        .find(Locator::Css("#token-input"))
        .await
        .expect("#token-input")
        .send_keys(token)
        .await
        .expect("type the token");
    b.client
        .find(Locator::Css("#token-dialog button[type=\"submit\"]"))
        .await
        .expect("the prompt's button")
        .click()
        .await
        .expect("submit the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_server_prompts_once_then_streams_and_the_token_stays_out_of_url_and_log() {
    let mut server = ChildServer::start(
        "dashboard-token",
        &["--rate", "300", "--token", TOKEN],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let b = browser::lease().await;
    b.goto(&format!("http://{}/?symbols=AAPL", server.addr))
        .await;
    wait_prompt(&b, 1).await;
    enter_token(&b, TOKEN).await;
    wait_live(&b).await;
    wait_received(&b, "AAPL", 5).await;
    // The /api/stats polls carry the token too: the server's figures show.
    b.wait_for(
        "server stage percentiles in the latency panel",
        "return document.querySelectorAll('#server-stages tbody th').length > 0;",
    )
    .await;
    // So does the time & sales history, asked for before the token was.
    b.wait_for(
        "the time & sales history loaded with the token",
        "return tickfeed.tape().state === 'live';",
    )
    .await;
    let stats = b.js("return tickfeed.stats();").await;
    assert_eq!(stats["prompts"], 1, "asked once: {stats}");
    assert_eq!(stats["connects"], 1, "{stats}");
    let href = b.js("return location.href;").await;
    assert!(!href.as_str().unwrap().contains(TOKEN), "{href}");
    let kept = b
        .js("return [sessionStorage.getItem('tickfeed.token'), JSON.stringify(localStorage)];")
        .await;
    assert_eq!(kept[0], json!(TOKEN), "kept for the tab");
    assert!(!kept[1].as_str().unwrap().contains(TOKEN), "{kept}");
    b.assert_no_page_errors().await;
    b.release().await;
    assert!(server.terminate().await.success());
    let log = server.log();
    assert!(
        log.contains("request refused: unauthorized") && log.contains("TRACE"),
        "the refusals were logged at trace level:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token leaked into the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_forgotten_and_asked_for_again() {
    let server = start_server(&["--rate", "300", "--token", TOKEN]).await;
    let b = browser::lease().await;
    b.goto(&format!("http://{}/?symbols=AAPL", server.addr))
        .await;
    wait_prompt(&b, 1).await;
    enter_token(&b, "tf-not-the-token").await;
    wait_prompt(&b, 2).await;
    let note = b
        .js("return !document.querySelector('#token-refused').hidden;")
        .await;
    assert_eq!(note, json!(true), "the prompt says the token was refused");
    let kept = b
        .js("return sessionStorage.getItem('tickfeed.token');")
        .await;
    assert_eq!(kept, json!(null), "the refused token is forgotten");
    enter_token(&b, TOKEN).await;
    wait_live(&b).await;
    wait_received(&b, "AAPL", 5).await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
