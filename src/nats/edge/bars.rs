//! The edge's part in bars through NATS: the source's bars of the symbols
//! reported `WantedBars` (`nats::bars`), each as of a tick at or after the
//! last one the edge has of it (the snapshot just read, or what `*`
//! brought), so that every later tick reaches the edge live: it
//! subscribed before it asked.

use super::EdgeState;
use crate::bars::BarSeed;
use crate::nats::bars::SourceBars;
use crate::protocol::Tick;
use async_nats::connection::State;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Instant;

/// Bars requests in flight at once.
const PARALLEL_FETCHES: usize = 16;

impl EdgeState {
    /// The source's bars of `names` (symbols just wanted); `latest` holds
    /// their snapshots. A symbol whose bars do not come is logged and
    /// counted, and its bars here start with the ticks the edge receives.
    pub(super) async fn fetch_bars(
        &mut self,
        names: Vec<Arc<str>>,
        latest: &[Tick],
    ) -> Vec<(Arc<str>, BarSeed)> {
        let Some(epoch) = self.epoch.clone() else {
            return Vec::new();
        };
        if names.is_empty() || self.client.connection_state() != State::Connected {
            return Vec::new();
        }
        let source = SourceBars::new(self.client.clone());
        let seen_of = |name: &Arc<str>| {
            let snapshot = latest.iter().filter(|t| t.sym == *name).map(|t| t.seq);
            snapshot
                .max()
                .unwrap_or(0)
                .max(self.inbound.last_forwarded(name))
        };
        let wanted: Vec<(Arc<str>, u64)> = names
            .into_iter()
            .map(|name| {
                let seen = seen_of(&name);
                (name, seen)
            })
            .collect();
        let started = Instant::now();
        let (source, epoch) = (&source, &epoch);
        let fetched: Vec<_> = futures_util::stream::iter(wanted)
            .map(
                |(name, seen)| async move { (name.clone(), source.fetch(epoch, name, seen).await) },
            )
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        let mut seeds = Vec::new();
        for (name, result) in fetched {
            match result {
                Ok(Some(seed)) => {
                    let seen = seen_of(&name);
                    if seed.seq < seen {
                        tracing::warn!(
                            symbol = %name,
                            "the source's bars of {name} stop at seq {}, before the {seen} this edge has; the trades between are missing from its bars here",
                            seed.seq
                        );
                    }
                    tracing::debug!(
                        symbol = %name,
                        seq = seed.seq,
                        bars = seed.bar_count(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "bars from the source"
                    );
                    self.counters.bars_seeded += 1;
                    seeds.push((name, seed));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("{e}; this edge's bars of it start with the ticks it receives");
                    self.counters.bars_unseeded += 1;
                }
            }
        }
        seeds
    }
}
