//! Client requests: turns one validated [`Request`] into router calls,
//! outbox changes and the reply events (ack, error, symbols, pong and
//! snapshots), in the order the client receives them. A resume whose
//! updates this node's rings lack waits for them (`backfill`) before its
//! ack. Bars requests are in `requests/bars.rs`, books in
//! `requests/book.rs`.

mod bars;
mod book;

use super::Limits;
use super::backfill::Backfill;
use super::outbox::{Collected, Delivery, Outbox};
use crate::codec::EncodedTick;
use crate::history::{HistoryRange, Keep};
use crate::protocol::{ErrorCode, Event, Request, ResumeFrom, SymbolSet, Tick, WILDCARD};
use crate::router::{ClientId, Grant, RouterGone, RouterHandle, Subscribed};
use crate::symbols::{SymbolId, SymbolTable};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

/// Updates fetched for a resume, by symbol, oldest first.
type Fetched = HashMap<SymbolId, Vec<Arc<EncodedTick>>>;

/// Replies to one request, plus how many snapshots they carry.
#[derive(Debug, Default)]
pub(super) struct Reply {
    pub events: Vec<Event>,
    pub snapshots: u64,
    /// True when the request was refused as a whole (counts as abuse).
    pub refused: bool,
    /// Data frames that follow the reply: the updates a resume sends.
    pub frames: Vec<Bytes>,
    /// What those frames carry, for counters.
    pub replayed: Collected,
}

impl Reply {
    /// Adds the `unknown_symbol` error for `unknown`, if any; the request
    /// was refused as a whole when nothing else was answered.
    pub(super) fn unknown_symbols(&mut self, id: Option<u64>, unknown: Vec<String>) {
        if unknown.is_empty() {
            return;
        }
        self.refused = self.events.is_empty();
        self.events.push(Event::Error {
            id,
            code: ErrorCode::UnknownSymbol,
            msg: format!("no such symbol: {}", unknown.join(", ")),
            symbols: Some(unknown),
        });
    }
}

/// A subscribe's settings, as the request gave them.
struct SubscribeAsked {
    delivery: Delivery,
    snapshot: bool,
    resume: Option<ResumeFrom>,
}

pub(super) struct RequestContext<'a> {
    pub client: ClientId,
    pub router: &'a RouterHandle,
    pub limits: &'a Limits,
    pub backfill: Option<&'a Backfill>,
    pub outbox: &'a mut Outbox,
}

impl SubscribeAsked {
    /// The client's `from` and epoch, when it resumes in `table`'s epoch.
    fn resume_in(&self, table: &SymbolTable) -> Option<&ResumeFrom> {
        self.resume
            .as_ref()
            .filter(|r| r.epoch.as_deref() == Some(table.epoch().as_str()))
    }
}

impl RequestContext<'_> {
    /// Refuses, in `reply`, a subscribe that would take the connection's
    /// subscriptions (ticks, bars and books together) past
    /// `--max-subscriptions`; `adding` of `what` are new. True if refused.
    fn refuse_over_limit(
        &self,
        id: Option<u64>,
        adding: usize,
        what: &str,
        reply: &mut Reply,
    ) -> bool {
        let (held, most) = (
            self.outbox.subscription_count(),
            self.limits.max_subscriptions,
        );
        if held + adding <= most {
            return false;
        }
        reply.refused = true;
        reply.events.push(Event::Error {
            id,
            code: ErrorCode::TooManySubscriptions,
            msg: format!(
                "{adding} more {what} would make {} subscriptions; the limit is {most} per connection",
                held + adding
            ),
            symbols: None,
        });
        true
    }

    pub(super) async fn handle(&mut self, request: Request) -> Result<Reply, RouterGone> {
        match request {
            Request::Subscribe {
                id,
                symbols,
                invalid,
                max_hz,
                snapshot,
                deltas,
                resume,
            } => {
                let asked = SubscribeAsked {
                    delivery: Delivery { max_hz, deltas },
                    snapshot,
                    resume,
                };
                self.subscribe(id, symbols, invalid, asked).await
            }
            Request::Unsubscribe { id, symbols } => self.unsubscribe(id, symbols).await,
            Request::SubscribeBars {
                id,
                tf,
                symbols,
                invalid,
                max_hz,
                snapshot,
            } => {
                let delivery = Delivery {
                    max_hz,
                    deltas: false,
                };
                self.subscribe_bars(id, tf, symbols, invalid, delivery, snapshot)
                    .await
            }
            Request::UnsubscribeBars { id, tf, symbols } => {
                self.unsubscribe_bars(id, tf, symbols).await
            }
            Request::SubscribeBook {
                id,
                symbols,
                invalid,
                depth,
                max_hz,
                snapshot,
            } => {
                let asked = book::BookAsked {
                    names: symbols,
                    unknown: invalid,
                    depth,
                    delivery: Delivery {
                        max_hz,
                        deltas: false,
                    },
                    snapshot,
                };
                self.subscribe_book(id, asked).await
            }
            Request::UnsubscribeBook { id, symbols } => self.unsubscribe_book(id, symbols).await,
            Request::Symbols { id } => {
                let symbols = self
                    .router
                    .table()
                    .iter()
                    .filter_map(|(_, cell)| cell.name().map(|n| n.to_string()))
                    .collect();
                Ok(Reply {
                    events: vec![Event::Symbols { id, symbols }],
                    ..Reply::default()
                })
            }
            Request::Ping { id, t } => Ok(Reply {
                events: vec![Event::Pong { id, t }],
                ..Reply::default()
            }),
        }
    }

    async fn subscribe(
        &mut self,
        id: Option<u64>,
        symbols: SymbolSet,
        mut unknown: Vec<String>,
        asked: SubscribeAsked,
    ) -> Result<Reply, RouterGone> {
        let mut reply = Reply::default();
        let mut snapshots = Vec::new();
        let mut resumed = BTreeMap::new();
        let acked: Vec<String> = match symbols {
            SymbolSet::All => {
                self.register(
                    SymbolSet::All,
                    &asked,
                    &mut reply,
                    &mut snapshots,
                    &mut resumed,
                )
                .await?;
                vec![WILDCARD.to_string()]
            }
            SymbolSet::Named(names) => {
                if self.refuse_over_limit(id, self.outbox.new_count(&names), "symbols", &mut reply)
                {
                    return Ok(reply);
                }
                if names.is_empty() {
                    Vec::new()
                } else {
                    let set = SymbolSet::Named(names.clone());
                    let granted = self
                        .register(set, &asked, &mut reply, &mut snapshots, &mut resumed)
                        .await?;
                    unknown.extend(granted.unknown.iter().cloned());
                    names
                        .into_iter()
                        .filter(|n| !granted.unknown.contains(n))
                        .collect()
                }
            }
        };
        if !acked.is_empty() {
            reply.events.push(Event::Ack {
                id,
                op: "subscribe".into(),
                channel: None,
                tf: None,
                depth: None,
                symbols: Some(acked),
                resumed: asked.resume.is_some().then_some(resumed),
            });
        }
        reply.unknown_symbols(id, unknown);
        reply.events.append(&mut snapshots);
        Ok(reply)
    }

    /// Fetches, for the symbols the client resumes, the updates after its
    /// `from` that this node's ring lacks (`Outbox::backfill_until`), when
    /// the node has somewhere to fetch them from. Bounded in time and size
    /// (`backfill`); what does not come is counted in `n` later.
    async fn backfill(&self, grants: &[Grant], asked: &SubscribeAsked) -> Fetched {
        let table = self.router.table();
        let (Some(backfill), Some(resume)) = (self.backfill, asked.resume_in(table)) else {
            return Fetched::new();
        };
        let wanted: Vec<_> = grants
            .iter()
            .filter_map(|grant| {
                let name = table.cell(grant.id).name()?;
                let from = *resume.last_seq.get(&**name)?;
                let until = self
                    .outbox
                    .backfill_until(grant, from, asked.delivery.max_hz)?;
                let range = HistoryRange {
                    after: from,
                    until: Some(until),
                    limit: backfill.per_symbol,
                    keep: Keep::Newest,
                };
                Some((grant.id, name.clone(), range))
            })
            .collect();
        backfill
            .fetch_all(&table.epoch(), wanted)
            .await
            .into_iter()
            .map(|(id, ticks)| (id, ticks.into_iter().map(encoded).collect()))
            .collect()
    }

    /// Registers `symbols` with the router, fetches what a resume needs
    /// and this node lacks, and records what the router granted.
    async fn register(
        &mut self,
        symbols: SymbolSet,
        asked: &SubscribeAsked,
        reply: &mut Reply,
        snapshots: &mut Vec<Event>,
        resumed: &mut BTreeMap<String, Option<u64>>,
    ) -> Result<Subscribed, RouterGone> {
        let wildcard = matches!(symbols, SymbolSet::All);
        let mailbox = self.outbox.mailbox();
        let granted = self.router.subscribe(self.client, mailbox, symbols).await?;
        if wildcard {
            self.outbox.add_wildcard(asked.delivery);
        }
        let fetched = self.backfill(&granted.granted, asked).await;
        self.add_grants(&granted.granted, asked, &fetched, reply, snapshots, resumed);
        Ok(granted)
    }

    /// Records the granted symbols: those the client resumes (named in
    /// `from`, same epoch) get their missed updates as data frames (the
    /// `fetched` ones first) and an entry in `resumed`; the rest are
    /// subscribed as usual, with a snapshot when asked (and `null` in
    /// `resumed` when named in `from`).
    fn add_grants(
        &mut self,
        grants: &[Grant],
        asked: &SubscribeAsked,
        fetched: &Fetched,
        reply: &mut Reply,
        snapshots: &mut Vec<Event>,
        resumed: &mut BTreeMap<String, Option<u64>>,
    ) {
        let now = Instant::now();
        let table = self.router.table();
        let epoch_matches = asked.resume_in(table).is_some();
        let mut fresh = Vec::with_capacity(grants.len());
        for grant in grants {
            let name = table.cell(grant.id).name();
            let from = asked
                .resume
                .as_ref()
                .zip(name)
                .and_then(|(r, name)| Some((name, *r.last_seq.get(&**name)?)));
            let Some((name, from)) = from else {
                fresh.push(grant);
                continue;
            };
            let lost = epoch_matches
                .then(|| {
                    self.outbox.resume(
                        grant,
                        from,
                        fetched.get(&grant.id).map_or(&[], Vec::as_slice),
                        asked.delivery,
                        now,
                        &mut reply.frames,
                        &mut reply.replayed,
                    )
                })
                .flatten();
            if lost.is_none() {
                fresh.push(grant);
            }
            resumed.insert(name.to_string(), lost);
        }
        self.outbox.finish_frame(&mut reply.frames);
        reply.snapshots += self
            .outbox
            .add(fresh, asked.delivery, asked.snapshot, snapshots, now);
    }

    async fn unsubscribe(
        &mut self,
        id: Option<u64>,
        symbols: SymbolSet,
    ) -> Result<Reply, RouterGone> {
        let acked = match &symbols {
            SymbolSet::All => vec![WILDCARD.to_string()],
            SymbolSet::Named(names) => names.clone(),
        };
        if self.outbox.mailbox_ref().is_some() {
            let removed = self
                .router
                .unsubscribe(self.client, symbols.clone())
                .await?;
            match symbols {
                SymbolSet::All => self.outbox.remove_all(),
                SymbolSet::Named(_) => self.outbox.remove(&removed),
            }
        }
        Ok(Reply {
            events: vec![Event::Ack {
                id,
                op: "unsubscribe".into(),
                channel: None,
                tf: None,
                depth: None,
                symbols: Some(acked),
                resumed: None,
            }],
            ..Reply::default()
        })
    }
}

/// A fetched update, as the router would have stored it.
fn encoded(mut tick: Tick) -> Arc<EncodedTick> {
    tick.n = 0;
    tick.snap = None;
    Arc::new(EncodedTick::new(tick))
}
