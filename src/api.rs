//! HTTP API beside `/ws`: `/api/symbols` (latest tick of every symbol),
//! `/api/ticks` (a symbol's retained recent updates), `/api/stats`
//! (counters and latency percentiles as JSON) and `/metrics` (the same in
//! Prometheus text format). The server hands each handler an
//! [`ApiState`]; nothing here knows the rest of the server.

use crate::protocol::{ErrorCode, Event, is_valid_symbol};
use crate::router::RouterHandle;
use crate::stats::Stats;
use crate::symbols::SymbolCell;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
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

/// Ticks one `/api/ticks` request returns when it names no `limit`.
pub(crate) const DEFAULT_TICKS_LIMIT: usize = 1_000;
/// Most ticks one `/api/ticks` request returns: about 2 MB of JSON; page
/// on with `after` set to the last seq received.
pub(crate) const MAX_TICKS_LIMIT: usize = 10_000;

/// A refused `/api/ticks` request: the protocol's error code and what was
/// wrong, as JSON.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    msg: String,
}

impl ApiError {
    fn bad_request(msg: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::BadRequest,
            msg,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "msg": self.msg });
        (self.status, Json(body)).into_response()
    }
}

/// What `/api/ticks` was asked.
#[derive(Debug, PartialEq)]
struct TicksQuery {
    sym: String,
    after: Option<u64>,
    limit: usize,
}

impl TicksQuery {
    /// Reads `sym`, `after` and `limit`; other parameters (`token`) are
    /// not this handler's.
    fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let sym = params
            .get("sym")
            .ok_or_else(|| ApiError::bad_request("missing parameter sym".into()))?;
        if !is_valid_symbol(sym) {
            return Err(ApiError::bad_request(format!(
                "parameter sym: {:?} is not a legal symbol",
                sym.chars().take(40).collect::<String>()
            )));
        }
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            params
                .get(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "parameter {name}: expected an unsigned integer, got {:?}",
                            v.chars().take(24).collect::<String>()
                        ))
                    })
                })
                .transpose()
        };
        let after = number("after")?;
        let limit = match number("limit")? {
            None => DEFAULT_TICKS_LIMIT,
            Some(limit) if (1..=MAX_TICKS_LIMIT as u64).contains(&limit) => limit as usize,
            Some(limit) => {
                return Err(ApiError::bad_request(format!(
                    "parameter limit: {limit} is outside 1 to {MAX_TICKS_LIMIT}"
                )));
            }
        };
        Ok(Self {
            sym: sym.clone(),
            after,
            limit,
        })
    }
}

/// `GET /api/ticks?sym=AAPL&after=SEQ&limit=N`: the retained updates of
/// one symbol after `after` (without it, the latest `limit`), oldest first,
/// as tick events whose `n` counts the updates between them that are no
/// longer retained, so the invariant holds from `after` on. The epoch of
/// their seqs is in the `Tickfeed-Epoch` header.
pub(crate) async fn ticks(
    State(app): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = TicksQuery::parse(&params)?;
    let table = app.router.table();
    let cell = table
        .iter()
        .find(|(_, cell)| cell.name().is_some_and(|n| **n == *query.sym))
        .map(|(_, cell)| cell)
        .ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::UnknownSymbol,
            msg: format!("no such symbol: {}", query.sym),
        })?;
    let events = retained_ticks(cell, &query);
    let epoch = HeaderValue::from_str(&table.epoch()).expect("epochs are ASCII");
    Ok(([(EPOCH_HEADER, epoch)], Json(events)).into_response())
}

/// The response header naming the epoch of `/api/ticks`' seqs.
pub(crate) const EPOCH_HEADER: &str = "tickfeed-epoch";

fn retained_ticks(cell: &SymbolCell, query: &TicksQuery) -> Vec<Event> {
    let latest_seq = cell.latest_seq();
    let Some(ring) = cell.ring() else {
        return Vec::new();
    };
    let after = query
        .after
        .unwrap_or_else(|| latest_seq.saturating_sub(query.limit as u64));
    let mut previous = query.after;
    let mut events = Vec::with_capacity(query.limit.min(1024));
    for seq in ring.candidates_after(after, latest_seq) {
        if events.len() == query.limit {
            break;
        }
        let Some(retained) = ring.get(seq) else {
            continue;
        };
        let mut tick = retained.tick.clone();
        tick.n = previous.map_or(0, |p| u32::try_from(seq - p - 1).unwrap_or(u32::MAX));
        previous = Some(seq);
        events.push(Event::Tick(tick));
    }
    events
}
