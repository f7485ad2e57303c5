//! HTTP API beside `/ws`: `/api/symbols` (latest tick of every symbol),
//! `/api/stats` (counters and latency percentiles as JSON) and `/metrics`
//! (the same in Prometheus text format).

use crate::protocol::Event;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;

pub async fn symbols(State(app): State<Arc<AppState>>) -> Json<Vec<Event>> {
    let ticks = app
        .router
        .table()
        .iter()
        .filter_map(|(_, cell)| cell.latest())
        .map(|latest| Event::Tick(latest.tick.clone()))
        .collect();
    Json(ticks)
}

pub async fn stats(State(app): State<Arc<AppState>>) -> Json<crate::stats::StatsSnapshot> {
    Json(app.stats.snapshot(app.router.table().len()))
}

pub async fn metrics(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    let text = crate::metrics::render(&app.stats.snapshot(app.router.table().len()));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
