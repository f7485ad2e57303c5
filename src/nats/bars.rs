//! Bars across the broker: for its first bars subscriber of a symbol an
//! edge takes the source's bars of it (`bars::BarSeed`), so its bars are
//! the source's from the first one, not built from the edge's first tick;
//! and an edge's `/api/bars` of a symbol whose bars it does not have from
//! the source asks the source.
//!
//! Request/reply to the source node, as for tick history (`history.rs`):
//! the source answers on `tickfeed.bars.<SYMBOL>` from its router, which
//! takes the seed between two routed batches, so it is tagged with the
//! `seq` of the last tick it includes. A request names the edge's epoch
//! and the `seq` the edge has already seen of the symbol; the source
//! answers once its router has routed that far (at most
//! [`ROUTED_WAIT`]), so the edge, which subscribed to the symbol's ticks
//! before it asked, receives every later tick live.
//!
//! ```text
//! edge  --request tickfeed.bars.AAPL [1, epoch, seen seq]------------->  source
//!       <--reply: nil (unknown symbol, other epoch), or
//!          [1, [seq, now, replay, state, finals per timeframe]] -------
//! ```
//!
//! Bounds: at most [`MAX_SEED_BARS`] final bars a reply (the newest,
//! longest timeframes first; the default retention is 6,413), and
//! [`FETCH_TIMEOUT`] for the edge's wait. Nothing of this runs until an
//! edge asks.

use super::responder::{self, Answers};
use super::subject::{self, ALL_BARS};
use crate::bars::BarSeed;
use crate::router::RouterHandle;
use crate::shutdown::ShutdownTrigger;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most final bars in one reply: about 900 KB, under the broker's default
/// 1 MB message limit, and more than the default retention's 6,413.
pub const MAX_SEED_BARS: usize = 12_000;
/// Longest the edge waits for the source's answer; then its bars of the
/// symbol start with the ticks it receives, as without a source.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the source waits for its router to route the `seq` an edge
/// has seen (the publisher hands ticks to the broker and the router at
/// about the same time; the router is normally microseconds behind).
const ROUTED_WAIT: Duration = Duration::from_millis(500);
/// Pause between the source's looks at its router while it waits.
const ROUTED_POLL: Duration = Duration::from_millis(2);
/// Version of the request and reply layouts.
const FORMAT: u8 = 1;

/// Bars that could not be had from the source.
#[derive(Debug, thiserror::Error)]
pub enum BarsFetchError {
    #[error("asking the source for the bars of {symbol}: no answer within {FETCH_TIMEOUT:?}")]
    Timeout { symbol: Arc<str> },
    #[error("asking the source for the bars of {symbol}: {cause}")]
    Request {
        symbol: Arc<str>,
        cause: async_nats::RequestError,
    },
    #[error("the source's bars of {symbol}: {cause}")]
    Payload { symbol: Arc<str>, cause: String },
}

/// A request's bytes: `[1, epoch, seen seq]`.
fn encode_request(epoch: &str, seen: u64) -> Bytes {
    rmp_serde::to_vec(&(FORMAT, epoch, seen))
        .expect("encoding a bars request")
        .into()
}

fn decode_request(bytes: &[u8]) -> Result<(String, u64), String> {
    let (format, epoch, seen): (u8, String, u64) =
        rmp_serde::from_slice(bytes).map_err(|e| format!("not a bars request: {e}"))?;
    if format != FORMAT {
        return Err(format!("bars request format {format} is not {FORMAT}"));
    }
    Ok((epoch, seen))
}

/// A reply's bytes: nil, or `[1, seed]`.
fn encode_reply(seed: Option<&BarSeed>) -> Bytes {
    rmp_serde::to_vec(&seed.map(|seed| (FORMAT, seed)))
        .expect("encoding bars")
        .into()
}

fn decode_reply(bytes: &[u8]) -> Result<Option<BarSeed>, String> {
    let reply: Option<(u8, BarSeed)> =
        rmp_serde::from_slice(bytes).map_err(|e| format!("not a bars reply: {e}"))?;
    match reply {
        Some((format, _)) if format != FORMAT => Err(format!(
            "bars format {format} is not supported (this build reads {FORMAT}); upgrade this node"
        )),
        reply => Ok(reply.map(|(_, seed)| seed)),
    }
}

/// The source's side, ready to run once its router does.
pub struct Answerer {
    client: async_nats::Client,
}

impl Answerer {
    pub(super) fn new(client: async_nats::Client) -> Self {
        Self { client }
    }

    /// Starts answering bars requests from `router`, on the current runtime.
    pub fn spawn(self, router: RouterHandle, trigger: &ShutdownTrigger) {
        tokio::spawn(responder::respond(
            self.client,
            BarsAnswers { router },
            trigger.subscribe(),
            trigger.guard(),
        ));
    }
}

/// The source's answers, from its router.
struct BarsAnswers {
    router: RouterHandle,
}

impl Answers for BarsAnswers {
    const SUBJECTS: &'static str = ALL_BARS;
    const WHAT: &'static str = "bars";

    async fn answer(&mut self, subject: &str, request: &[u8]) -> Result<Bytes, String> {
        answer(&self.router, subject, request).await
    }

    fn nothing() -> Bytes {
        encode_reply(None)
    }
}

/// The reply to one request: the symbol's bars once the router has
/// routed the `seq` the edge has seen (or [`ROUTED_WAIT`] passed); nil for
/// an unknown symbol or another epoch.
async fn answer(router: &RouterHandle, subject: &str, request: &[u8]) -> Result<Bytes, String> {
    let symbol =
        subject::symbol_of_bars(subject).ok_or_else(|| format!("{subject} names no symbol"))?;
    let (epoch, seen) = decode_request(request)?;
    if epoch != router.table().epoch() {
        return Ok(encode_reply(None));
    }
    let deadline = Instant::now() + ROUTED_WAIT;
    loop {
        let seed = router
            .bar_seed(symbol.to_string(), MAX_SEED_BARS)
            .await
            .map_err(|e| e.to_string())?;
        match seed {
            Some(seed) if seed.seq < seen && Instant::now() < deadline => {
                tokio::time::sleep(ROUTED_POLL).await;
            }
            seed => return Ok(encode_reply(seed.as_ref())),
        }
    }
}

/// The edge's side: asks the source for a symbol's bars.
#[derive(Debug, Clone)]
pub struct SourceBars {
    client: async_nats::Client,
}

impl SourceBars {
    pub(super) fn new(client: async_nats::Client) -> Self {
        Self { client }
    }

    /// The source's bars of `symbol` as of a tick at or after `seen`,
    /// numbered in `epoch`; `None` when the source does not know the
    /// symbol or numbers in another epoch.
    pub async fn fetch(
        &self,
        epoch: &str,
        symbol: Arc<str>,
        seen: u64,
    ) -> Result<Option<BarSeed>, BarsFetchError> {
        let request = self
            .client
            .request(subject::bars_of(&symbol), encode_request(epoch, seen));
        let reply = match tokio::time::timeout(FETCH_TIMEOUT, request).await {
            Err(_) => return Err(BarsFetchError::Timeout { symbol }),
            Ok(Err(cause)) => return Err(BarsFetchError::Request { symbol, cause }),
            Ok(Ok(reply)) => reply,
        };
        decode_reply(&reply.payload).map_err(|cause| BarsFetchError::Payload { symbol, cause })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bars::{Bar, OpenBar, SymbolBars, Timeframe};

    /// A seed as full as the default retention keeps: 6,413 finals.
    fn full_seed() -> BarSeed {
        let bar = |t: u64| Bar {
            t,
            o: 101.25,
            h: 101.5,
            l: 100.75,
            c: 101.0,
            v: 12_345,
            trades: 67,
            vwap: 101.123_456_7,
        };
        let mut seed = BarSeed {
            seq: 1_234_567,
            now: 1_700_000_000_000_000_000,
            replay: false,
            state: SymbolBars {
                vol: Some(9_876_543),
                traded: true,
                open: [Some(OpenBar {
                    bar: bar(1_700_000_000_000_000_000),
                    price_weight: 1_248_363.75,
                    weight: 12_345.0,
                }); 5],
            },
            finals: Default::default(),
        };
        for (tf, keep) in Timeframe::ALL
            .into_iter()
            .zip([3_600, 1_440, 288, 720, 365])
        {
            seed.finals[tf.index()] = (0..keep)
                .map(|i| bar(1_600_000_000_000_000_000 + i))
                .collect();
        }
        seed
    }

    #[test]
    fn a_seed_crosses_the_broker_unchanged_and_within_its_message_limit() {
        let seed = full_seed();
        let bytes = encode_reply(Some(&seed));
        assert_eq!(decode_reply(&bytes).unwrap(), Some(seed.clone()));
        assert_eq!(decode_reply(&encode_reply(None)).unwrap(), None);
        let per_bar = bytes.len() as f64 / seed.bar_count() as f64;
        println!(
            "a full seed: {} bars in {} bytes ({per_bar:.1} per bar)",
            seed.bar_count(),
            bytes.len()
        );
        assert!(
            per_bar * MAX_SEED_BARS as f64 <= 1_000_000.0,
            "{MAX_SEED_BARS} bars fit the broker's 1 MB"
        );
    }

    #[test]
    fn requests_and_replies_of_another_format_are_refused_with_a_reason() {
        assert_eq!(
            decode_request(&encode_request("e1", 42)).unwrap(),
            ("e1".to_string(), 42)
        );
        let other = rmp_serde::to_vec(&(2u8, "e1", 42u64)).unwrap();
        assert!(decode_request(&other).unwrap_err().contains("format 2"));
        assert!(
            decode_request(b"junk")
                .unwrap_err()
                .contains("not a bars request")
        );
        let newer = rmp_serde::to_vec(&Some((9u8, full_seed()))).unwrap();
        assert!(
            decode_reply(&newer)
                .unwrap_err()
                .contains("upgrade this node")
        );
    }
}
