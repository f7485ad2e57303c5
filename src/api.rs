//! HTTP API beside `/ws`: `/api/symbols` (latest tick of every symbol),
//! `/api/stats` (counters and latency percentiles as JSON) and `/metrics`
//! (the same in Prometheus text format). The server hands each handler an
//! [`ApiState`]; nothing here knows the rest of the server.

use crate::protocol::Event;
use crate::router::RouterHandle;
use crate::stats::Stats;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;

/// What the API reads: the statistics and the router's symbol table.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub stats: Arc<Stats>,
    pub router: RouterHandle,
}

pub(crate) async fn symbols(State(app): State<ApiState>) -> Json<Vec<Event>> {
    let ticks = app
        .router
        .table()
        .iter()
        .filter_map(|(_, cell)| cell.latest())
        .map(|latest| Event::Tick(latest.tick.clone()))
        .collect();
    Json(ticks)
}

pub(crate) async fn stats(State(app): State<ApiState>) -> Json<crate::stats::StatsSnapshot> {
    Json(app.stats.snapshot(app.router.table().len()))
}

pub(crate) async fn metrics(State(app): State<ApiState>) -> impl IntoResponse {
    let text = crate::metrics::render(&app.stats.snapshot(app.router.table().len()));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
