//! `GET /api/bars?sym=AAPL&tf=1m&limit=500[&from=T&to=T]`: a symbol's
//! retained bars in one timeframe, oldest first, as `bar` events: the
//! final ones, then the open one (`final: false`). `from` and `to` (ns
//! since the epoch) keep the bars that start in `[from, to)`; `limit`
//! keeps the newest of those.

use super::{ApiError, ApiState};
use crate::protocol::{BarEvent, HistoryBarEvent, Timeframe};
use axum::Json;
use axum::extract::{Query, State};
use std::collections::HashMap;

/// Bars one request returns when it names no `limit`.
pub(crate) const DEFAULT_BARS_LIMIT: usize = 500;
/// Most bars one request returns: about 1.5 MB of JSON.
pub(crate) const MAX_BARS_LIMIT: usize = 10_000;

/// What `/api/bars` was asked: its query parameters, which
/// [`BarsQuery::parse`] reads (naming a bad one) and whose schema is the
/// OpenAPI description's (`contract`).
#[derive(Debug, PartialEq, schemars::JsonSchema)]
pub(crate) struct BarsQuery {
    /// The symbol.
    #[schemars(pattern(crate::protocol::SYMBOL_PATTERN))]
    sym: String,
    /// The timeframe: `1s`, `1m`, `5m`, `1h` or `1d`.
    tf: Timeframe,
    /// Keep the bars that start at or after this time, ns since the epoch.
    #[schemars(default = "from_start")]
    from: u64,
    /// Keep the bars that start before this time, ns since the epoch;
    /// absent: no bound.
    to: Option<u64>,
    /// At most this many bars, the newest of those kept.
    #[schemars(default = "default_bars_limit", range(min = 1, max = MAX_BARS_LIMIT))]
    limit: usize,
}

/// `from`'s default, for the schema: the epoch.
fn from_start() -> u64 {
    0
}

/// [`DEFAULT_BARS_LIMIT`], as the schema's `default`.
fn default_bars_limit() -> usize {
    DEFAULT_BARS_LIMIT
}

impl BarsQuery {
    fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let sym = super::symbol_param(params)?;
        let tf = params
            .get("tf")
            .ok_or_else(|| ApiError::bad_request("missing parameter tf".into()))?;
        let tf = Timeframe::parse(tf).ok_or_else(|| {
            ApiError::bad_request(format!(
                "parameter tf: {:?} is not a timeframe; use 1s, 1m, 5m, 1h or 1d",
                tf.chars().take(24).collect::<String>()
            ))
        })?;
        let from = super::number_param(params, "from")?.unwrap_or(0);
        let to = super::number_param(params, "to")?;
        if let Some(to) = to.filter(|&to| from >= to) {
            return Err(ApiError::bad_request(format!(
                "parameters from and to: from ({from}) must be before to ({to})"
            )));
        }
        let limit = super::limit_param(params, DEFAULT_BARS_LIMIT, MAX_BARS_LIMIT)?;
        Ok(Self {
            sym,
            tf,
            from,
            to,
            limit,
        })
    }
}

pub(crate) async fn bars(
    State(app): State<ApiState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<HistoryBarEvent>>, ApiError> {
    let query = BarsQuery::parse(&params)?;
    let (id, cell) = super::find_symbol(&app, &query.sym)?;
    let sym = cell.name().expect("a named cell").clone();
    let (finals, open) = app.router.bars().history(
        id,
        query.tf,
        query.from,
        query.to.unwrap_or(u64::MAX),
        query.limit,
    );
    let event = |bar, is_final| {
        HistoryBarEvent::Bar(BarEvent {
            sym: sym.clone(),
            tf: query.tf,
            bar,
            snap: None,
            is_final,
        })
    };
    let events = finals
        .into_iter()
        .map(|bar| event(bar, true))
        .chain(open.map(|bar| event(bar, false)))
        .collect();
    Ok(Json(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<BarsQuery, String> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BarsQuery::parse(&params).map_err(|e| e.to_string())
    }

    #[test]
    fn a_query_needs_a_symbol_and_a_timeframe_and_sane_bounds() {
        let q = parse(&[("sym", "AAPL"), ("tf", "1m")]).unwrap();
        assert_eq!((q.from, q.to, q.limit), (0, None, DEFAULT_BARS_LIMIT));
        assert!(
            parse(&[("sym", "AAPL")])
                .unwrap_err()
                .contains("missing parameter tf")
        );
        assert!(
            parse(&[("sym", "AAPL"), ("tf", "2m")])
                .unwrap_err()
                .contains("not a timeframe")
        );
        assert!(
            parse(&[("tf", "1m")])
                .unwrap_err()
                .contains("missing parameter sym")
        );
        let bad = parse(&[("sym", "AAPL"), ("tf", "1m"), ("from", "5"), ("to", "5")]);
        assert!(bad.unwrap_err().contains("must be before"));
        let bad = parse(&[("sym", "AAPL"), ("tf", "1m"), ("limit", "0")]);
        assert!(bad.unwrap_err().contains("outside 1 to"));
    }
}
