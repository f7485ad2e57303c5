//! The handshake's policies against the real server: `--allowed-origin`
//! refuses other browser origins with 403 before the upgrade, and tokens
//! never appear in the log, whether right or wrong, in a header or a query
//! string, even at debug level (the binary's own log output is read).

mod common;
mod process;

use common::{Client, start_server};
use process::ChildServer;
use tokio_tungstenite::tungstenite::Error as WsError;

fn refused_with(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got a session"),
    }
}

#[tokio::test]
async fn only_listed_browser_origins_may_open_the_feed() {
    let server = start_server(&[
        "--rate",
        "10",
        "--allowed-origin",
        "https://dash.example.com,http://localhost:3000",
    ])
    .await;
    let url = server.ws_url();
    Client::connect_with(&url, &[("origin", "https://dash.example.com")])
        .await
        .expect("listed origin");
    Client::connect_with(&url, &[("origin", "http://localhost:3000")])
        .await
        .expect("listed origin");
    Client::connect_with(&url, &[])
        .await
        .expect("no Origin: not a browser");
    let same_origin = format!("http://{}", server.addr);
    Client::connect_with(&url, &[("origin", &same_origin)])
        .await
        .expect("the page this server serves");
    assert_eq!(
        refused_with(Client::connect_with(&url, &[("origin", "https://evil.example")]).await),
        403
    );
    assert_eq!(
        refused_with(
            Client::connect_with(&url, &[("origin", "https://dash.example.com.evil.example")])
                .await
        ),
        403
    );
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["connections_refused"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn without_an_origin_list_any_origin_is_accepted() {
    let server = start_server(&["--rate", "10"]).await;
    Client::connect_with(&server.ws_url(), &[("origin", "https://anywhere.example")])
        .await
        .expect("open by default");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_the_log_even_at_debug_level() {
    const TOKEN: &str = "tf-right-7c1d9e4a";
    const WRONG: &str = "tf-wrong-52b8aa03";
    let mut server = ChildServer::start(
        "token-log",
        &["--rate", "50", "--symbols", "3"],
        &[("RUST_LOG", "debug"), ("TICKFEED_TOKENS", TOKEN)],
    )
    .await;
    let url = server.ws_url();
    let bearer = format!("Bearer {TOKEN}");
    let by_header = Client::connect_with(&url, &[("authorization", &bearer)])
        .await
        .expect("right token in a header");
    let by_query = Client::connect_with(&format!("{url}?token={TOKEN}"), &[])
        .await
        .expect("right token in the query");
    let wrong_bearer = format!("Bearer {WRONG}");
    assert_eq!(
        refused_with(Client::connect_with(&url, &[("authorization", &wrong_bearer)]).await),
        401
    );
    assert_eq!(
        refused_with(Client::connect_with(&format!("{url}?token={WRONG}"), &[]).await),
        401
    );
    let prefix = &TOKEN[..TOKEN.len() - 1];
    assert_eq!(
        refused_with(Client::connect_with(&format!("{url}?token={prefix}"), &[]).await),
        401
    );
    assert_eq!(refused_with(Client::connect_with(&url, &[]).await), 401);
    drop(by_header);
    server
        .wait_for_stats("a session ended", |s| s["connections"] == 1)
        .await;
    let status = server.terminate().await;
    assert!(status.success());
    drop(by_query);
    let log = server.log();
    assert!(
        log.contains("request refused: unauthorized"),
        "debug log captured:\n{log}"
    );
    assert!(log.contains("DEBUG"), "debug level was on:\n{log}");
    for secret in [TOKEN, WRONG, prefix] {
        assert!(!log.contains(secret), "a token leaked into the log:\n{log}");
    }
}
