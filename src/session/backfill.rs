//! Backfill: the updates a resume needs that this node's rings do not
//! hold. A NATS edge's rings hold only what arrived since it began serving
//! a symbol; its source holds more. The session asks through
//! [`HistoryFetch`], which is declared here and implemented by the NATS
//! edge (`nats::history`), so the session never sees the broker;
//! `server.rs` wires the one into the other. Without NATS there is none,
//! and a resume reads the local rings alone.
//!
//! Every fetch is bounded, so a broker or source that is slow or gone
//! never holds a session up: one subscribe's fetches run
//! [`PARALLEL_FETCHES`] at a time within [`FETCH_TIMEOUT`] all together,
//! and each asks for at most [`Backfill::per_symbol`] updates. What does
//! not come back in time is counted in `n`, like updates no ring holds.

use crate::history::HistoryRange;
use crate::protocol::Tick;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// Longest one subscribe (or one `/api/ticks` request) waits for
/// backfill; then it goes on with what it has.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Fetches in flight at once for one subscribe: enough to overlap round
/// trips, few enough that a resume of `*` does not flood the source.
const PARALLEL_FETCHES: usize = 32;

/// Where updates this node's rings lack come from (a NATS edge's source).
pub trait HistoryFetch: Send + Sync + std::fmt::Debug {
    /// The retained updates of `symbol` that `range` selects, oldest
    /// first, numbered in `epoch`; none when the other side holds none, or
    /// numbers in another epoch.
    fn fetch(
        &self,
        epoch: &str,
        symbol: Arc<str>,
        range: HistoryRange,
    ) -> BoxFuture<'static, Result<Vec<Tick>, FetchError>>;
}

/// A fetch that failed; the session goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("fetching the history of {symbol}: {cause}")]
pub struct FetchError {
    pub symbol: Arc<str>,
    pub cause: String,
}

/// A node's backfill: where from, and how much per symbol.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub fetch: Arc<dyn HistoryFetch>,
    /// Most updates one resume fetches per symbol: the node's own
    /// `--history`, what its ring would hold had it served the symbol.
    pub per_symbol: usize,
}

impl Backfill {
    /// Runs `wanted` (a key, the symbol, what to read) with the bounds
    /// above. Returns what came back in time, by key; failures are
    /// logged and left out.
    pub(crate) async fn fetch_all<K: Hash + Eq>(
        &self,
        epoch: &str,
        wanted: Vec<(K, Arc<str>, HistoryRange)>,
    ) -> HashMap<K, Vec<Tick>> {
        let mut fetched = HashMap::with_capacity(wanted.len());
        if wanted.is_empty() {
            return fetched;
        }
        let asked = wanted.len();
        let deadline = tokio::time::Instant::now() + FETCH_TIMEOUT;
        let mut results = futures_util::stream::iter(wanted)
            .map(|(key, symbol, range)| {
                let fetch = self.fetch.fetch(epoch, symbol, range);
                async move { (key, fetch.await) }
            })
            .buffer_unordered(PARALLEL_FETCHES);
        loop {
            match tokio::time::timeout_at(deadline, results.next()).await {
                Ok(Some((key, Ok(ticks)))) => {
                    fetched.insert(key, ticks);
                }
                Ok(Some((_, Err(e)))) => tracing::debug!("{e}"),
                Ok(None) => break,
                Err(_) => {
                    tracing::info!(
                        asked,
                        answered = fetched.len(),
                        "backfill took longer than {FETCH_TIMEOUT:?}; going on without the rest"
                    );
                    break;
                }
            }
        }
        fetched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Keep;

    /// Answers with `count` updates after `range.after`, or never for
    /// `HANG`, or an error for `FAIL`.
    #[derive(Debug)]
    struct Fake;

    impl HistoryFetch for Fake {
        fn fetch(
            &self,
            _epoch: &str,
            symbol: Arc<str>,
            range: HistoryRange,
        ) -> BoxFuture<'static, Result<Vec<Tick>, FetchError>> {
            Box::pin(async move {
                match &*symbol {
                    "HANG" => std::future::pending().await,
                    "FAIL" => Err(FetchError {
                        symbol,
                        cause: "no responders".into(),
                    }),
                    _ => Ok((range.after + 1..=range.after + 3)
                        .map(|seq| Tick::test(&symbol, seq))
                        .collect()),
                }
            })
        }
    }

    fn wanted(symbols: &[&str]) -> Vec<(usize, Arc<str>, HistoryRange)> {
        let range = HistoryRange {
            after: 10,
            until: None,
            limit: 100,
            keep: Keep::Newest,
        };
        symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (i, Arc::from(*s), range.clone()))
            .collect()
    }

    fn fake() -> Backfill {
        Backfill {
            fetch: Arc::new(Fake),
            per_symbol: 100,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_or_failing_fetch_never_holds_up_the_others() {
        let backfill = fake();
        let started = tokio::time::Instant::now();
        let fetched = backfill
            .fetch_all("e", wanted(&["AAPL", "HANG", "FAIL", "MSFT"]))
            .await;
        assert_eq!(started.elapsed(), FETCH_TIMEOUT, "bounded by the timeout");
        let mut keys: Vec<_> = fetched.keys().copied().collect();
        keys.sort();
        assert_eq!(keys, [0, 3]);
        assert_eq!(fetched[&0].len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_that_all_answer_return_at_once() {
        let backfill = fake();
        let started = tokio::time::Instant::now();
        let fetched = backfill.fetch_all("e", wanted(&["A", "B"])).await;
        assert_eq!(fetched.len(), 2);
        assert!(started.elapsed() < FETCH_TIMEOUT);
    }
}
