//! Bars requests: `subscribe` and `unsubscribe` with `"channel":"bars"`
//! and a timeframe. Acks name the channel and timeframe; the open bars
//! follow the ack as snapshots (see `outbox/bars.rs` for what comes next).

use super::{Reply, RequestContext};
use crate::protocol::{Event, Timeframe};
use crate::router::RouterGone;
use crate::session::outbox::Delivery;
use tokio::time::Instant;

/// The ack of a bars request.
fn ack(id: Option<u64>, op: &str, tf: Timeframe, symbols: Vec<String>) -> Event {
    Event::Ack {
        id,
        op: op.into(),
        channel: Some("bars".into()),
        tf: Some(tf),
        depth: None,
        symbols: Some(symbols),
        resumed: None,
    }
}

impl RequestContext<'_> {
    pub(super) async fn subscribe_bars(
        &mut self,
        id: Option<u64>,
        tf: Timeframe,
        names: Vec<String>,
        mut unknown: Vec<String>,
        delivery: Delivery,
        snapshot: bool,
    ) -> Result<Reply, RouterGone> {
        let mut reply = Reply::default();
        if self.refuse_over_limit(id, names.len(), "bars", &mut reply) {
            return Ok(reply);
        }
        let mailbox = self.outbox.mailbox();
        mailbox.enable_bars();
        let granted = self
            .router
            .subscribe_bars(self.client, mailbox, tf, names.clone())
            .await?;
        unknown.extend(granted.unknown.iter().cloned());
        let mut snapshots = Vec::new();
        reply.snapshots = self.outbox.add_bars(
            &granted.granted,
            tf,
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
            reply.events.push(ack(id, "subscribe", tf, acked));
        }
        reply.unknown_symbols(id, unknown);
        reply.events.append(&mut snapshots);
        Ok(reply)
    }

    pub(super) async fn unsubscribe_bars(
        &mut self,
        id: Option<u64>,
        tf: Timeframe,
        names: Vec<String>,
    ) -> Result<Reply, RouterGone> {
        if self.outbox.bar_subscription_count() > 0 {
            let removed = self
                .router
                .unsubscribe_bars(self.client, tf, names.clone())
                .await?;
            self.outbox.remove_bars(&removed, tf);
        }
        Ok(Reply {
            events: vec![ack(id, "unsubscribe", tf, names)],
            ..Reply::default()
        })
    }
}
