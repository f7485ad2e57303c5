//! `/readyz` against real servers: public like `/healthz`, 200 once the
//! source has produced; on a NATS edge (real nats-server and nodes from
//! `scale_out/cluster.rs`), 503 while the broker is down and 200 again
//! once it is back, with `/metrics` saying the same. Shutting down (503)
//! is covered by `readiness`'s unit tests: the listener stops taking
//! requests at the same moment.
//!
//! Needs Debian's `nats-server` (`.ci/run` installs it).

#[path = "scale_out/cluster.rs"]
mod cluster;
mod common;

use cluster::{Broker, source_and_edge};
use common::{Scratch, poll, start_server};

/// GETs `url` and returns the status and body; `None` while unreachable.
async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test]
async fn readyz_is_public_and_ready_once_the_source_produced() {
    let server = start_server(&["--rate", "200", "--token", "s3cret"]).await;
    let ready = poll("/readyz to answer 200 without a token", || async {
        get(&server.http_url("/readyz"))
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(ready.1, "ready\n");
    let stats = server.get_json("/api/stats").await;
    assert!(stats["ticks_in"].as_u64().unwrap() > 0, "{stats}");
    let (metrics_status, _) = get(&server.http_url("/metrics")).await.unwrap();
    assert_eq!(metrics_status, 401, "/metrics still needs the token");
    server.shutdown().await;
}

#[tokio::test]
async fn an_edge_is_unready_while_its_broker_is_down() {
    let scratch = Scratch::new("readyz-edge");
    let mut broker = Broker::start(&scratch).await;
    let (_source, edge) = source_and_edge(&scratch, &broker, &["--rate", "200"]).await;
    let readyz = format!("http://{}/readyz", edge.addr);
    let metrics = format!("http://{}/metrics", edge.addr);
    let status_is = |wanted: u16| {
        let readyz = readyz.clone();
        move || {
            let readyz = readyz.clone();
            async move { get(&readyz).await.filter(|(status, _)| *status == wanted) }
        }
    };
    poll("the edge to be ready", status_is(200)).await;

    broker.kill().await;
    let (_, body) = poll("the edge to report the broker lost", status_is(503)).await;
    assert_eq!(body, "not ready: NATS connection lost\n");
    let (_, exposition) = get(&metrics).await.unwrap();
    assert!(
        exposition.contains("tickfeed_nats_connected 0"),
        "{exposition}"
    );

    broker.restart().await;
    poll("the edge to be ready again", status_is(200)).await;
    let (_, exposition) = get(&metrics).await.unwrap();
    assert!(
        exposition.contains("tickfeed_nats_connected 1"),
        "{exposition}"
    );
    assert!(
        exposition.contains("tickfeed_nats_reconnects_total 1"),
        "{exposition}"
    );
}
