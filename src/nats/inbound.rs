//! What reaches an edge's router from NATS: messages decoded into ticks,
//! and the one filter every tick passes, live or read as a snapshot: only a
//! `seq` above the last one forwarded for its symbol goes on. Redelivery
//! after a reconnect, subscriptions that overlap while `*` comes and goes,
//! and snapshot reads that race live updates therefore never duplicate or
//! reorder anything, and updates missed in an outage show as a jump in
//! `seq`, which clients see as `n`. Owned by the edge task.

use super::{payload, subject};
use crate::protocol::Tick;
use std::collections::HashMap;
use std::sync::Arc;

/// Shown in the edge's status (`/api/stats`, `source.inbound`).
#[derive(Debug, Default, serde::Serialize)]
pub struct InboundCounters {
    pub received: u64,
    pub forwarded: u64,
    /// Not newer than what was already forwarded.
    pub stale: u64,
    pub unreadable: u64,
}

#[derive(Debug, Default)]
pub struct Inbound {
    /// `seq` of the last tick forwarded, per symbol.
    last: HashMap<Arc<str>, u64>,
    pub counters: InboundCounters,
}

impl Inbound {
    /// Decodes a live message onto `batch`. Unreadable ones are counted and
    /// the first is logged.
    pub fn decode_into(&mut self, message: &async_nats::Message, batch: &mut Vec<Tick>) {
        self.counters.received += 1;
        let decoded = subject::symbol_of(&message.subject)
            .ok_or_else(|| "not a tick subject".to_string())
            .and_then(|symbol| {
                let sym = match self.last.get_key_value(&*symbol) {
                    Some((known, _)) => known.clone(),
                    None => Arc::from(&*symbol),
                };
                payload::decode_tick(sym, &message.payload).map_err(|e| e.to_string())
            });
        match decoded {
            Ok(tick) => batch.push(tick),
            Err(e) => {
                if self.counters.unreadable == 0 {
                    tracing::warn!(subject = %message.subject, "ignoring a message: {e}");
                }
                self.counters.unreadable += 1;
            }
        }
    }

    /// `seq` of the last tick of `symbol` forwarded (0: none).
    pub fn last_forwarded(&self, symbol: &str) -> u64 {
        self.last.get(symbol).copied().unwrap_or(0)
    }

    /// Forgets what was forwarded: seqs start again in a new epoch.
    pub fn forget(&mut self) {
        self.last.clear();
    }

    /// The ticks newer than the last forwarded of their symbol, now
    /// recorded as forwarded.
    pub fn fresh(&mut self, ticks: Vec<Tick>) -> Vec<Tick> {
        let before = ticks.len();
        let fresh: Vec<Tick> = ticks.into_iter().filter(|t| self.advance(t)).collect();
        self.counters.stale += (before - fresh.len()) as u64;
        self.counters.forwarded += fresh.len() as u64;
        fresh
    }

    fn advance(&mut self, tick: &Tick) -> bool {
        match self.last.get_mut(&tick.sym) {
            Some(seq) if tick.seq <= *seq => false,
            Some(seq) => {
                *seq = tick.seq;
                true
            }
            None => {
                self.last.insert(tick.sym.clone(), tick.seq);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(sym: &str, seq: u64) -> Tick {
        Tick {
            ts: seq,
            ..Tick::test(sym, seq)
        }
    }

    fn message(subject: &str, payload: bytes::Bytes) -> async_nats::Message {
        async_nats::Message {
            subject: subject.into(),
            reply: None,
            payload,
            headers: None,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn only_newer_seqs_pass_so_redelivery_never_duplicates() {
        let mut inbound = Inbound::default();
        let seqs = [1, 2, 2, 1, 5, 4, 6].map(|seq| tick("AAPL", seq));
        let passed: Vec<u64> = inbound.fresh(seqs.to_vec()).iter().map(|t| t.seq).collect();
        assert_eq!(passed, [1, 2, 5, 6]);
        assert_eq!(inbound.fresh(vec![tick("MSFT", 1)]).len(), 1, "per symbol");
        assert_eq!((inbound.counters.forwarded, inbound.counters.stale), (5, 3));
    }

    #[test]
    fn after_forgetting_lower_seqs_pass_again() {
        let mut inbound = Inbound::default();
        inbound.fresh(vec![tick("AAPL", 900)]);
        inbound.forget();
        assert_eq!(inbound.fresh(vec![tick("AAPL", 1)]).len(), 1, "a new epoch");
    }

    #[test]
    fn messages_decode_by_subject_and_garbage_is_counted() {
        let mut inbound = Inbound::default();
        let mut batch = Vec::new();
        let encoded = payload::encode_tick(&tick("BRK.B", 3));
        inbound.decode_into(&message("tickfeed.ticks.BRK%2EB", encoded), &mut batch);
        inbound.decode_into(&message("tickfeed.ticks.X", "junk".into()), &mut batch);
        assert_eq!(batch, [tick("BRK.B", 3)]);
        assert_eq!(
            (inbound.counters.received, inbound.counters.unreadable),
            (2, 1)
        );
    }
}
