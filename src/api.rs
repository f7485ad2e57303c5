//! HTTP API beside `/ws`: `/api/symbols` (latest tick of every symbol),
//! `/api/ticks` (a symbol's retained recent updates), `/api/bars` (its
//! bars, `api/bars.rs`), `/api/book` (its current book, `api/book.rs`),
//! `/api/stats` (counters and latency percentiles as
//! JSON) and `/metrics` (the same, with histograms, in OpenMetrics or
//! Prometheus text format). The server hands each handler an [`ApiState`];
//! nothing here knows the rest of the server.
//!
//! On a NATS edge, `/api/ticks` reads the source's history (the session's
//! [`Backfill`]) when the edge's own ring does not cover the request, so
//! it answers as the source would, and `/api/bars` of a symbol the edge
//! does not serve asks the source for its bars (`nats::bars`).

mod bars;
mod book;

pub(crate) use bars::{BarsQuery, bars};
pub(crate) use book::{BookQuery, book};

use crate::history::{HistoryRange, Keep};
use crate::metrics::Exposition;
use crate::protocol::{ErrorCode, FullTickEvent, Tick, is_valid_symbol};
use crate::router::RouterHandle;
use crate::session::Backfill;
use crate::stats::Stats;
use crate::symbols::{SymbolCell, SymbolId};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// What the API reads: the statistics and the router's symbol table, and
/// where history this node lacks comes from (NATS edges).
#[derive(Clone)]
pub(crate) struct ApiState {
    pub stats: Arc<Stats>,
    pub router: RouterHandle,
    pub backfill: Option<Backfill>,
    /// On a NATS edge: where the bars of symbols it does not serve are.
    pub source_bars: Option<crate::nats::bars::SourceBars>,
    /// On a NATS edge: where the latest books of symbols whose books it
    /// does not receive are.
    pub stored_books: Option<crate::nats::book::StoredBooks>,
}

pub(crate) async fn symbols(State(app): State<ApiState>) -> Json<Vec<FullTickEvent>> {
    let ticks = app
        .router
        .table()
        .iter()
        .filter_map(|(_, cell)| cell.latest())
        .map(|latest| FullTickEvent::Tick(latest.tick.clone()))
        .collect();
    Json(ticks)
}

pub(crate) async fn stats(State(app): State<ApiState>) -> Json<crate::stats::StatsSnapshot> {
    Json(app.stats.snapshot(app.router.table().len()))
}

pub(crate) async fn metrics(State(app): State<ApiState>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok());
    let format = Exposition::accepted(accept);
    let text = crate::metrics::render(&app.stats, app.router.table().len(), format);
    ([(header::CONTENT_TYPE, format.content_type())], text)
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

/// The body of a refused `/api` request.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ApiErrorBody {
    /// Why, as a protocol error code.
    error: ErrorCode,
    /// Why, in words, naming the parameter.
    msg: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            error: self.code,
            msg: self.msg,
        };
        (self.status, Json(body)).into_response()
    }
}

/// What `/api/ticks` was asked: its query parameters, which
/// [`TicksQuery::parse`] reads (naming a bad one) and whose schema is the
/// OpenAPI description's (`contract`).
#[derive(Debug, PartialEq, schemars::JsonSchema)]
pub(crate) struct TicksQuery {
    /// The symbol.
    #[schemars(pattern(crate::protocol::SYMBOL_PATTERN))]
    sym: String,
    /// Return the updates with `seq > after`, oldest first; without it,
    /// the latest `limit`.
    after: Option<u64>,
    /// At most this many ticks.
    #[schemars(default = "default_ticks_limit", range(min = 1, max = MAX_TICKS_LIMIT))]
    limit: usize,
}

/// [`DEFAULT_TICKS_LIMIT`], as the schema's `default`.
fn default_ticks_limit() -> usize {
    DEFAULT_TICKS_LIMIT
}

impl TicksQuery {
    /// Reads `sym`, `after` and `limit`; other parameters (`token`) are
    /// not this handler's.
    fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let sym = symbol_param(params)?;
        let after = number_param(params, "after")?;
        let limit = limit_param(params, DEFAULT_TICKS_LIMIT, MAX_TICKS_LIMIT)?;
        Ok(Self { sym, after, limit })
    }
}

/// The `sym` parameter, a legal symbol name.
fn symbol_param(params: &HashMap<String, String>) -> Result<String, ApiError> {
    let sym = params
        .get("sym")
        .ok_or_else(|| ApiError::bad_request("missing parameter sym".into()))?;
    if !is_valid_symbol(sym) {
        return Err(ApiError::bad_request(format!(
            "parameter sym: {:?} is not a legal symbol",
            sym.chars().take(40).collect::<String>()
        )));
    }
    Ok(sym.clone())
}

/// The symbol named `sym` and its id; 404 when there is none.
fn find_symbol<'a>(app: &'a ApiState, sym: &str) -> Result<(SymbolId, &'a SymbolCell), ApiError> {
    app.router
        .table()
        .iter()
        .find(|(_, cell)| cell.name().is_some_and(|n| **n == *sym))
        .ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::UnknownSymbol,
            msg: format!("no such symbol: {sym}"),
        })
}

/// The parameter `name` as an unsigned integer, if given.
fn number_param(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
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
}

/// The `limit` parameter, from 1 to `most`; `default` when absent.
fn limit_param(
    params: &HashMap<String, String>,
    default: usize,
    most: usize,
) -> Result<usize, ApiError> {
    match number_param(params, "limit")? {
        None => Ok(default),
        Some(limit) if (1..=most as u64).contains(&limit) => Ok(limit as usize),
        Some(limit) => Err(ApiError::bad_request(format!(
            "parameter limit: {limit} is outside 1 to {most}"
        ))),
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
    let (_, cell) = find_symbol(&app, &query.sym)?;
    let epoch = table.epoch();
    let range = query.range();
    let local: Vec<Tick> = cell.read(&range).iter().map(|t| t.tick.clone()).collect();
    let ticks = match &app.backfill {
        Some(backfill) if !covers(&query, &local) => {
            let symbol: Arc<str> = cell.name().expect("a named cell").clone();
            let mut fetched = backfill.fetch_all(&epoch, vec![((), symbol, range)]).await;
            let better = |f: &Vec<Tick>| covers(&query, f) || f.len() > local.len();
            fetched.remove(&()).filter(better).unwrap_or(local)
        }
        _ => local,
    };
    let events = with_gaps(query.after, ticks);
    let epoch = HeaderValue::from_str(&epoch).expect("epochs are ASCII");
    Ok(([(EPOCH_HEADER, epoch)], Json(events)).into_response())
}

/// The response header naming the epoch of `/api/ticks`' seqs.
pub(crate) const EPOCH_HEADER: &str = "tickfeed-epoch";

impl TicksQuery {
    /// What to read: after `after`, the oldest `limit` (a page); without
    /// it, the newest `limit`.
    fn range(&self) -> HistoryRange {
        HistoryRange {
            after: self.after.unwrap_or(0),
            until: None,
            limit: self.limit,
            keep: if self.after.is_some() {
                Keep::Oldest
            } else {
                Keep::Newest
            },
        }
    }
}

/// Whether `ticks` (read from this node's ring) answer `query` in full:
/// unbroken, and starting right after `after` or filling `limit`.
fn covers(query: &TicksQuery, ticks: &[Tick]) -> bool {
    let unbroken = ticks.windows(2).all(|w| w[1].seq == w[0].seq + 1);
    let starts_right = match (query.after, ticks.first()) {
        (_, None) => false,
        (Some(after), Some(first)) => first.seq == after + 1,
        (None, Some(first)) => first.seq == 1 || ticks.len() == query.limit,
    };
    unbroken && starts_right
}

/// Tick events with `n` counting the seqs between them that are missing,
/// from `after` on (the first without `after` has `n = 0`).
fn with_gaps(after: Option<u64>, ticks: Vec<Tick>) -> Vec<FullTickEvent> {
    let mut previous = after;
    ticks
        .into_iter()
        .map(|mut tick| {
            tick.n = previous.map_or(0, |p| {
                u32::try_from(tick.seq.saturating_sub(p + 1)).unwrap_or(u32::MAX)
            });
            previous = Some(tick.seq);
            FullTickEvent::Tick(tick)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<u64>, limit: usize) -> TicksQuery {
        TicksQuery {
            sym: "AAPL".into(),
            after,
            limit,
        }
    }

    fn ticks(seqs: impl IntoIterator<Item = u64>) -> Vec<Tick> {
        seqs.into_iter().map(|s| Tick::test("AAPL", s)).collect()
    }

    #[test]
    fn a_local_answer_covers_a_query_only_when_unbroken_from_where_it_asked() {
        assert!(covers(&query(Some(10), 5), &ticks(11..=15)));
        assert!(!covers(&query(Some(10), 5), &ticks(12..=16)), "starts late");
        assert!(!covers(&query(Some(10), 5), &ticks([11, 12, 14])), "a gap");
        assert!(!covers(&query(Some(10), 5), &[]), "nothing here");
        assert!(covers(&query(None, 3), &ticks(8..=10)), "the latest 3");
        assert!(!covers(&query(None, 5), &ticks(8..=10)), "short");
        assert!(covers(&query(None, 5), &ticks(1..=3)), "all there is");
    }

    #[test]
    fn n_counts_the_seqs_missing_from_after_on() {
        let n = |after, seqs: &[u64]| -> Vec<u32> {
            with_gaps(after, ticks(seqs.iter().copied()))
                .into_iter()
                .map(|FullTickEvent::Tick(t)| t.n)
                .collect()
        };
        assert_eq!(n(Some(10), &[11, 12, 15]), [0, 0, 2]);
        assert_eq!(n(Some(10), &[14]), [3]);
        assert_eq!(n(None, &[14, 16]), [0, 1]);
    }

    #[test]
    fn a_query_reads_a_page_after_after_or_else_the_latest() {
        assert_eq!(query(Some(7), 10).range().keep, Keep::Oldest);
        let latest = query(None, 10).range();
        assert_eq!((latest.after, latest.keep), (0, Keep::Newest));
    }
}
