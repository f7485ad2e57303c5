//! Client requests: turns one validated [`Request`] into router calls,
//! outbox changes and the reply events (ack, error, symbols, pong and
//! snapshots), in the order the client receives them.

use super::Limits;
use super::outbox::Outbox;
use crate::protocol::{ErrorCode, Event, Request, SymbolSet, WILDCARD};
use crate::router::{ClientId, RouterGone, RouterHandle};
use tokio::time::Instant;

/// Replies to one request, plus how many snapshots they carry.
#[derive(Debug, Default)]
pub(super) struct Reply {
    pub events: Vec<Event>,
    pub snapshots: u64,
    /// True when the request was refused as a whole (counts as abuse).
    pub refused: bool,
}

pub(super) struct RequestContext<'a> {
    pub client: ClientId,
    pub router: &'a RouterHandle,
    pub limits: &'a Limits,
    pub outbox: &'a mut Outbox,
}

impl RequestContext<'_> {
    pub(super) async fn handle(&mut self, request: Request) -> Result<Reply, RouterGone> {
        match request {
            Request::Subscribe {
                id,
                symbols,
                invalid,
                max_hz,
                snapshot,
            } => self.subscribe(id, symbols, invalid, max_hz, snapshot).await,
            Request::Unsubscribe { id, symbols } => self.unsubscribe(id, symbols).await,
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
        max_hz: f64,
        snapshot: bool,
    ) -> Result<Reply, RouterGone> {
        let mut reply = Reply::default();
        let mut snapshots = Vec::new();
        let now = Instant::now();
        let acked: Vec<String> = match symbols {
            SymbolSet::All => {
                let mailbox = self.outbox.mailbox();
                let granted = self
                    .router
                    .subscribe(self.client, mailbox, SymbolSet::All)
                    .await?;
                self.outbox.add_wildcard(max_hz);
                reply.snapshots =
                    self.outbox
                        .add(&granted.granted, max_hz, snapshot, &mut snapshots, now);
                vec![WILDCARD.to_string()]
            }
            SymbolSet::Named(names) => {
                let held = self.outbox.subscription_count();
                let adding = self.outbox.new_count(&names);
                if held + adding > self.limits.max_subscriptions {
                    reply.refused = true;
                    reply.events.push(Event::Error {
                        id,
                        code: ErrorCode::TooManySubscriptions,
                        msg: format!(
                            "{adding} more symbols would make {} subscriptions; the limit is {} per connection",
                            held + adding,
                            self.limits.max_subscriptions
                        ),
                        symbols: None,
                    });
                    return Ok(reply);
                }
                if names.is_empty() {
                    Vec::new()
                } else {
                    let mailbox = self.outbox.mailbox();
                    let granted = self
                        .router
                        .subscribe(self.client, mailbox, SymbolSet::Named(names.clone()))
                        .await?;
                    reply.snapshots =
                        self.outbox
                            .add(&granted.granted, max_hz, snapshot, &mut snapshots, now);
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
                symbols: Some(acked),
            });
        }
        if !unknown.is_empty() {
            reply.refused = reply.events.is_empty();
            reply.events.push(Event::Error {
                id,
                code: ErrorCode::UnknownSymbol,
                msg: format!("no such symbol: {}", unknown.join(", ")),
                symbols: Some(unknown),
            });
        }
        reply.events.append(&mut snapshots);
        Ok(reply)
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
                symbols: Some(acked),
            }],
            ..Reply::default()
        })
    }
}
