//! `GET /api/book?sym=AAPL&depth=10`: a symbol's current book, as the
//! `book` event a subscriber would get (`n` 0, no `snap`), cut to `depth`
//! levels per side (default and most: the server's `--depth`). On a NATS
//! edge that does not receive the symbol's books (no local book
//! subscriber), the latest book the source stored in the broker.

use super::{ApiError, ApiState};
use crate::protocol::{BookEvent, CurrentBookEvent, ErrorCode, MAX_DEPTH};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::Arc;

/// What `/api/book` was asked: its query parameters, which
/// [`BookQuery::parse`] reads (naming a bad one) and whose schema is the
/// OpenAPI description's (`contract`).
#[derive(Debug, PartialEq, schemars::JsonSchema)]
pub(crate) struct BookQuery {
    /// The symbol.
    #[schemars(pattern(crate::protocol::SYMBOL_PATTERN))]
    sym: String,
    /// Levels per side, at most the server's `--depth`; absent: `--depth`.
    #[schemars(range(min = 1, max = MAX_DEPTH))]
    depth: Option<usize>,
}

impl BookQuery {
    /// Reads `sym` and `depth`, which must be 1 to `most` (`--depth`).
    fn parse(params: &HashMap<String, String>, most: usize) -> Result<Self, ApiError> {
        let sym = super::symbol_param(params)?;
        let depth = match super::number_param(params, "depth")? {
            None => None,
            Some(depth) if (1..=most as u64).contains(&depth) => Some(depth as usize),
            Some(depth) => {
                return Err(ApiError::bad_request(format!(
                    "parameter depth: {depth} is outside 1 to {most} (this server's --depth)"
                )));
            }
        };
        Ok(Self { sym, depth })
    }
}

pub(crate) async fn book(
    State(app): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<CurrentBookEvent>, ApiError> {
    let store = app.router.books();
    let query = BookQuery::parse(&params, store.depth())?;
    let (id, _) = super::find_symbol(&app, &query.sym)?;
    let depth = query.depth.unwrap_or(store.depth());
    let latest = match (store.latest(id), &app.stored_books) {
        (Some(latest), _) => Some(latest.at_depth(depth)),
        (None, Some(stored)) => match stored.latest(&Arc::from(query.sym.as_str())).await {
            Ok(book) => book.map(|book| BookEvent {
                depth: book.depth.truncated(depth),
                ..book
            }),
            Err(e) => {
                tracing::warn!("{e}; /api/book answers with this edge's own books");
                None
            }
        },
        (None, None) => None,
    };
    let latest = latest.ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        code: ErrorCode::UnknownSymbol,
        msg: format!(
            "no book for {}: its source sends none (generic CSV has no book) or none yet",
            query.sym
        ),
    })?;
    Ok(Json(CurrentBookEvent::Book(latest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<BookQuery, String> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BookQuery::parse(&params, 10).map_err(|e| e.to_string())
    }

    #[test]
    fn a_query_needs_a_symbol_and_a_depth_within_the_servers() {
        assert_eq!(parse(&[("sym", "AAPL")]).unwrap().depth, None);
        assert_eq!(
            parse(&[("sym", "AAPL"), ("depth", "10")]).unwrap().depth,
            Some(10)
        );
        for depth in ["0", "11", "x", "-1"] {
            let error = parse(&[("sym", "AAPL"), ("depth", depth)]).unwrap_err();
            assert!(error.contains("parameter depth"), "{depth}: {error}");
        }
        assert!(parse(&[]).unwrap_err().contains("missing parameter sym"));
    }
}
