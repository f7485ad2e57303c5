//! The source node's request/reply loop, shared by everything an edge asks
//! it for (recent ticks in `history.rs`, a symbol's bars in `bars.rs`):
//! subscribe to the requests' subjects, answer one request at a time until
//! shutdown, and answer a request that cannot be read with the empty reply,
//! warning once.

use crate::shutdown::{DoneGuard, Shutdown};
use bytes::Bytes;
use futures_util::StreamExt;

/// What one kind of request is answered with.
pub(super) trait Answers: Send + 'static {
    /// The requests' subjects (a wildcard), e.g. `tickfeed.history.>`.
    const SUBJECTS: &'static str;
    /// What the requests are for, in log lines ("history", "bars").
    const WHAT: &'static str;

    /// The reply to the request on `subject` with `payload`, or why it
    /// cannot be read.
    fn answer(
        &mut self,
        subject: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<Bytes, String>> + Send;

    /// The reply to a request that cannot be read: nothing.
    fn nothing() -> Bytes;
}

/// Answers the requests of `A::SUBJECTS` until `shutdown`.
pub(super) async fn respond<A: Answers>(
    client: async_nats::Client,
    mut answers: A,
    mut shutdown: Shutdown,
    done: DoneGuard,
) {
    let (subjects, what) = (A::SUBJECTS, A::WHAT);
    let mut requests = match client.subscribe(subjects).await {
        Ok(requests) => requests,
        Err(e) => {
            tracing::warn!("not answering {what} requests: subscribing to {subjects}: {e}");
            return;
        }
    };
    let mut refused = 0u64;
    loop {
        let request = tokio::select! {
            _ = shutdown.wait() => break,
            request = requests.next() => match request {
                Some(request) => request,
                None => break,
            },
        };
        let Some(reply) = request.reply.clone() else {
            continue;
        };
        let answer = match answers.answer(&request.subject, &request.payload).await {
            Ok(answer) => answer,
            Err(e) => {
                if refused == 0 {
                    tracing::warn!("answering nothing to a {what} request: {e}");
                }
                refused += 1;
                A::nothing()
            }
        };
        if let Err(e) = client.publish(reply, answer).await {
            tracing::debug!("answering a {what} request: {e}");
        }
    }
    drop(done);
}
