//! What a session does with what the client sends: requests (size check,
//! request budget, the reply), pongs for flow control, and pings counted
//! against the budget.

use super::requests::{self, RequestContext};
use super::{Session, SocketError, Stop};
use crate::codec::Encoding;
use crate::protocol::{ErrorCode, RequestError, parse_json_request, parse_msgpack_request};
use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl<S, E> Session<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: SocketError,
{
    pub(super) async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let max = self.settings.limits.max_request_bytes;
        let parsed = match message {
            Message::Text(text) => {
                check_size(text.len(), max).and_then(|()| parse_json_request(text.as_bytes()))
            }
            Message::Binary(bytes) if self.encoding == Encoding::Msgpack => {
                check_size(bytes.len(), max).and_then(|()| parse_msgpack_request(&bytes))
            }
            Message::Binary(_) => Err(RequestError::new(
                None,
                ErrorCode::BadRequest,
                "binary frames are accepted only in msgpack mode; send JSON text",
            )),
            Message::Close(_) => return Err(Stop::ClientClosed),
            Message::Pong(payload)
                if self.flow.on_pong(
                    &payload,
                    Instant::now(),
                    self.settings.stats.scheduling_lag(),
                ) =>
            {
                return Ok(());
            }
            Message::Ping(_) | Message::Pong(_) => return self.on_control_frame(),
        };
        // Every request costs a token, valid or not; the refusal names the
        // request's id when it could be read, so clients can match it.
        let parsed = if self.budget.try_take(Instant::now()) {
            parsed
        } else {
            let id = match &parsed {
                Ok(request) => request.id(),
                Err(error) => error.id,
            };
            Err(RequestError::new(
                id,
                ErrorCode::RateLimited,
                format!(
                    "more than {} requests per second",
                    self.settings.limits.requests_per_sec
                ),
            ))
        };
        let stats = &self.settings.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let reply = match parsed {
            Ok(request) => {
                let mut context = RequestContext {
                    client: self.client,
                    router: &self.settings.router,
                    limits: &self.settings.limits,
                    backfill: self.settings.backfill.as_ref(),
                    outbox: &mut self.outbox,
                };
                context
                    .handle(request)
                    .await
                    .map_err(|_| Stop::ServerError)?
            }
            Err(error) => requests::Reply {
                events: vec![error.into_event()],
                refused: true,
                ..requests::Reply::default()
            },
        };
        if reply.refused {
            stats.request_errors.fetch_add(1, Ordering::Relaxed);
            if self.budget.refused() {
                return Err(Stop::Abuse);
            }
        } else {
            self.budget.accepted();
        }
        stats
            .snapshots_out
            .fetch_add(reply.snapshots, Ordering::Relaxed);
        self.update_subscription_gauge();
        self.check_epoch()?;
        self.send_control(&reply.events).await?;
        // A resume's missed updates follow the ack, as data under flow
        // control.
        self.frames.extend(reply.frames);
        self.write_frames(Instant::now(), reply.replayed, None)
            .await
    }

    /// Pings and pongs cost a request token, as requests do, so a ping
    /// flood (which tungstenite answers on its own) counts as abuse and is
    /// closed with 1008; within the budget they cost nothing more.
    fn on_control_frame(&mut self) -> Result<(), Stop> {
        if self.budget.try_take(Instant::now()) {
            self.budget.accepted();
        } else if self.budget.refused() {
            return Err(Stop::Abuse);
        }
        Ok(())
    }

    pub(super) fn update_subscription_gauge(&mut self) {
        let now = self.outbox.subscription_count() as i64;
        let delta = now - self.counted_subscriptions;
        if delta != 0 {
            self.settings
                .stats
                .subscriptions
                .fetch_add(delta, Ordering::Relaxed);
            self.counted_subscriptions = now;
        }
    }
}

/// Refuses a request over the size limit before parsing it.
fn check_size(len: usize, max: usize) -> Result<(), RequestError> {
    if len > max {
        return Err(RequestError::new(
            None,
            ErrorCode::TooLarge,
            format!("request of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    Ok(())
}
