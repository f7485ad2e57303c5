//! Recent history across the broker, for resumes on an edge whose rings
//! lack it (`session::backfill`) and for its `/api/ticks`.
//!
//! Request/reply to the source: the source node answers requests on
//! `tickfeed.history.<SYMBOL>` from its own rings (its router keeps the
//! same history rings as any node), one request per symbol, paged by
//! [`MAX_REPLY_TICKS`]. A request names the edge's epoch; a source of
//! another epoch answers with nothing. Nothing of this runs until an edge
//! asks, so the hot path pays nothing (`docs/scaling.md`, "Resuming
//! through edges", has the measurement that chose this).
//!
//! ```text
//! edge  --request tickfeed.history.AAPL [epoch, after, until, limit]-->  source
//!       <--reply: ticks, oldest first (payload.rs) ---------------------
//! ```

use super::payload;
use super::responder::{self, Answers};
use super::subject::{self, ALL_HISTORY};
use crate::history::{HistoryRange, Keep};
use crate::protocol::Tick;
use crate::session::{FetchError, HistoryFetch};
use crate::shutdown::ShutdownTrigger;
use crate::symbols::{SymbolId, SymbolTable};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

/// Most ticks in one reply: about 250 KB, well under the broker's default
/// 1 MB message limit; the edge asks again for the rest.
pub const MAX_REPLY_TICKS: usize = 4096;

/// Starts answering history requests from `table`'s rings (source node).
pub(super) fn answer_requests(
    client: async_nats::Client,
    table: Arc<SymbolTable>,
    trigger: &ShutdownTrigger,
) {
    let answers = HistoryAnswers {
        table,
        ids: HashMap::new(),
    };
    tokio::spawn(responder::respond(
        client,
        answers,
        trigger.subscribe(),
        trigger.guard(),
    ));
}

/// What the source answers, read from its table.
struct HistoryAnswers {
    table: Arc<SymbolTable>,
    /// Symbol ids by name, filled as requests name them (ids never change).
    ids: HashMap<Arc<str>, SymbolId>,
}

impl Answers for HistoryAnswers {
    const SUBJECTS: &'static str = ALL_HISTORY;
    const WHAT: &'static str = "history";

    async fn answer(&mut self, subject: &str, request: &[u8]) -> Result<Bytes, String> {
        self.reply(subject, request)
    }

    fn nothing() -> Bytes {
        payload::encode_ticks([])
    }
}

impl HistoryAnswers {
    /// The reply to one request: the retained ticks it asks for (none for
    /// an unknown symbol or another epoch), or why it cannot be read.
    fn reply(&mut self, subject: &str, request: &[u8]) -> Result<Bytes, String> {
        let symbol = subject::symbol_of_history(subject)
            .ok_or_else(|| format!("{subject} names no symbol"))?;
        let (epoch, mut range) =
            payload::decode_history_request(request).map_err(|e| e.to_string())?;
        if epoch != self.table.epoch() {
            return Ok(payload::encode_ticks([]));
        }
        range.limit = range.limit.min(MAX_REPLY_TICKS);
        let ticks = self
            .id_of(&symbol)
            .map(|id| self.table.cell(id).read(&range))
            .unwrap_or_default();
        Ok(payload::encode_ticks(ticks.iter().map(|t| &t.tick)))
    }

    fn id_of(&mut self, symbol: &str) -> Option<SymbolId> {
        if let Some(&id) = self.ids.get(symbol) {
            return Some(id);
        }
        let (id, cell) = self
            .table
            .iter()
            .find(|(_, cell)| cell.name().is_some_and(|n| &**n == symbol))?;
        self.ids.insert(cell.name()?.clone(), id);
        Some(id)
    }
}

/// The edge's side: asks the source, page by page.
#[derive(Debug, Clone)]
pub struct RequestHistory {
    client: async_nats::Client,
}

impl RequestHistory {
    pub(super) fn new(client: async_nats::Client) -> Self {
        Self { client }
    }
}

impl HistoryFetch for RequestHistory {
    fn fetch(
        &self,
        epoch: &str,
        symbol: Arc<str>,
        range: HistoryRange,
    ) -> BoxFuture<'static, Result<Vec<Tick>, FetchError>> {
        let client = self.client.clone();
        let epoch = epoch.to_string();
        Box::pin(async move {
            request_pages(&client, &epoch, &symbol, range)
                .await
                .map_err(|cause| FetchError { symbol, cause })
        })
    }
}

/// Asks for `range` in pages of at most [`MAX_REPLY_TICKS`], walking from
/// the end it keeps, until a reply is short or the limit is reached.
async fn request_pages(
    client: &async_nats::Client,
    epoch: &str,
    symbol: &Arc<str>,
    range: HistoryRange,
) -> Result<Vec<Tick>, String> {
    let subject = subject::history_of(symbol);
    let mut ticks: Vec<Tick> = Vec::new();
    let mut page = range.clone();
    loop {
        page.limit = (range.limit - ticks.len()).min(MAX_REPLY_TICKS);
        if page.limit == 0 || page.until.is_some_and(|until| until <= page.after) {
            return Ok(ticks);
        }
        let request = payload::encode_history_request(epoch, &page);
        let reply = client
            .request(subject.clone(), request)
            .await
            .map_err(|e| e.to_string())?;
        let got = payload::decode_ticks(symbol, &reply.payload).map_err(|e| e.to_string())?;
        let short = got.len() < page.limit;
        match range.keep {
            Keep::Oldest => {
                page.after = got.last().map_or(page.after, |t| t.seq);
                ticks.extend(got);
            }
            Keep::Newest => {
                page.until = got.first().map(|t| t.seq - 1).or(page.until);
                ticks.splice(0..0, got);
            }
        }
        if short {
            return Ok(ticks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::EncodedTick;
    use crate::router::Retention;

    /// A source's table: AAPL with updates 1 to 100 retained.
    fn answers() -> HistoryAnswers {
        let table = Arc::new(SymbolTable::new(4));
        table.push("AAPL".into()).unwrap();
        let mut retention = Retention::new(1024, usize::MAX);
        for seq in 1..=100 {
            let tick = Arc::new(EncodedTick::new(Tick::test("AAPL", seq)));
            retention.store(&table, 0, &tick);
            table.store(0, tick);
        }
        HistoryAnswers {
            table,
            ids: HashMap::new(),
        }
    }

    fn newest(after: u64, until: u64, limit: usize) -> HistoryRange {
        HistoryRange {
            after,
            until: Some(until),
            limit,
            keep: Keep::Newest,
        }
    }

    fn seqs_answered(
        answers: &mut HistoryAnswers,
        epoch: &str,
        symbol: &str,
        range: &HistoryRange,
    ) -> Vec<u64> {
        let request = payload::encode_history_request(epoch, range);
        let reply = answers
            .reply(&subject::history_of(symbol), &request)
            .unwrap();
        payload::decode_ticks(&symbol.into(), &reply)
            .unwrap()
            .iter()
            .map(|t| t.seq)
            .collect()
    }

    #[test]
    fn the_source_answers_from_its_ring_in_its_own_epoch_only() {
        let mut answers = answers();
        let epoch = answers.table.epoch();
        let got = seqs_answered(&mut answers, &epoch, "AAPL", &newest(10, 60, 5));
        assert_eq!(got, [56, 57, 58, 59, 60]);
        let all = seqs_answered(&mut answers, &epoch, "AAPL", &newest(0, 100, 1000));
        assert_eq!(all, (1..=100).collect::<Vec<_>>());
        assert!(seqs_answered(&mut answers, "another", "AAPL", &newest(10, 60, 5)).is_empty());
        assert!(seqs_answered(&mut answers, &epoch, "NOPE", &newest(10, 60, 5)).is_empty());
    }

    #[test]
    fn a_request_that_cannot_be_read_is_refused_with_a_reason() {
        let mut answers = answers();
        let err = answers.reply("tickfeed.history.AAPL", b"junk").unwrap_err();
        assert!(err.contains("not a tickfeed payload"), "{err}");
        assert!(answers.reply("tickfeed.other", b"").is_err());
    }
}
