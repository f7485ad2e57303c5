//! Book requests: `subscribe` and `unsubscribe` with `"channel":"book"`.
//! A subscribe's `depth` is at most the server's `--depth` (its default);
//! acks name the channel; the latest books follow the ack as snapshots
//! (see `outbox/book.rs` for what comes next).

use super::{Reply, RequestContext};
use crate::protocol::{ErrorCode, Event};
use crate::router::RouterGone;
use crate::session::outbox::Delivery;
use tokio::time::Instant;

/// The ack of a book request; a subscribe's names the depth granted.
fn ack(id: Option<u64>, op: &str, depth: Option<usize>, symbols: Vec<String>) -> Event {
    Event::Ack {
        id,
        op: op.into(),
        channel: Some("book".into()),
        tf: None,
        depth,
        symbols: Some(symbols),
        resumed: None,
    }
}

/// A book subscribe as the request gave it.
pub(super) struct BookAsked {
    pub names: Vec<String>,
    pub unknown: Vec<String>,
    /// `None`: the server's `--depth`.
    pub depth: Option<usize>,
    pub delivery: Delivery,
    pub snapshot: bool,
}

impl RequestContext<'_> {
    pub(super) async fn subscribe_book(
        &mut self,
        id: Option<u64>,
        asked: BookAsked,
    ) -> Result<Reply, RouterGone> {
        let BookAsked {
            names,
            mut unknown,
            depth,
            delivery,
            snapshot,
        } = asked;
        let mut reply = Reply::default();
        let most = self.router.books().depth();
        let depth = depth.unwrap_or(most);
        if depth > most {
            reply.refused = true;
            reply.events.push(Event::Error {
                id,
                code: ErrorCode::BadRequest,
                msg: format!(
                    "field depth: {depth} is more than this server keeps (--depth {most}); use 1 to {most}"
                ),
                symbols: None,
            });
            return Ok(reply);
        }
        if self.refuse_over_limit(id, self.outbox.new_book_count(&names), "books", &mut reply) {
            return Ok(reply);
        }
        let mailbox = self.outbox.mailbox();
        mailbox.enable_books();
        let granted = self
            .router
            .subscribe_book(self.client, mailbox, names.clone())
            .await?;
        unknown.extend(granted.unknown.iter().cloned());
        let mut snapshots = Vec::new();
        reply.snapshots = self.outbox.add_books(
            &granted.granted,
            depth,
            delivery,
            snapshot,
            &mut snapshots,
            Instant::now(),
        );
        let acked: Vec<String> = names
            .into_iter()
            .filter(|n| !granted.unknown.contains(n))
            .collect();
        if !acked.is_empty() {
            reply.events.push(ack(id, "subscribe", Some(depth), acked));
        }
        reply.unknown_symbols(id, unknown);
        reply.events.append(&mut snapshots);
        Ok(reply)
    }

    pub(super) async fn unsubscribe_book(
        &mut self,
        id: Option<u64>,
        names: Vec<String>,
    ) -> Result<Reply, RouterGone> {
        if self.outbox.book_subscription_count() > 0 {
            let removed = self
                .router
                .unsubscribe_book(self.client, names.clone())
                .await?;
            self.outbox.remove_books(&removed);
        }
        Ok(Reply {
            events: vec![ack(id, "unsubscribe", None, names)],
            ..Reply::default()
        })
    }
}
