//! The last value per symbol, kept by the broker: the JetStream stream
//! `TICKFEED` over every tick and book subject, the universe and the epoch, holding
//! one message per subject (`max_msgs_per_subject = 1`) in file storage, so
//! it survives a broker restart with the same store directory.
//!
//! The publisher fills it just by publishing (the stream captures its
//! subjects; no acknowledgements on the hot path) and reads it once at start
//! to continue `seq` and the epoch. The edge reads it for snapshots (one
//! direct get per symbol, answered by any server holding the stream), for
//! the universe and for the epoch.

use super::book;
use super::payload::{self, PayloadError};
use super::subject::{self, ALL_BOOKS, ALL_TICKS, EPOCH, UNIVERSE};
use crate::protocol::{BookEvent, Tick};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{self, DirectGetErrorKind, DiscardPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// Name of the stream; one tickfeed deployment per broker (or account).
pub const STREAM: &str = "TICKFEED";
/// A broker that takes longer than this to answer counts as unavailable,
/// so that a subscribe waiting for a snapshot is answered without it rather
/// than hang.
pub(super) const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// The temporary consumer used to read every last value is removed by the
/// broker this long after use, should this node vanish mid-read.
const READER_IDLE: Duration = Duration::from_secs(30);

/// The broker refused or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("JetStream stream {STREAM}: {what}: {cause}")]
    Broker {
        what: &'static str,
        cause: async_nats::Error,
    },
    #[error("JetStream stream {STREAM}: {subject}: {cause}")]
    Payload {
        subject: String,
        cause: PayloadError,
    },
}

fn broker(what: &'static str) -> impl FnOnce(async_nats::Error) -> StoreError {
    move |cause| StoreError::Broker { what, cause }
}

fn context(client: async_nats::Client) -> Context {
    jetstream::ContextBuilder::new()
        .timeout(FETCH_TIMEOUT)
        .build(client)
}

/// Cheap-to-clone handle on the stream.
#[derive(Clone)]
pub struct LastValues {
    context: Context,
    stream: jetstream::stream::Stream,
    replicas: usize,
}

/// The stream's settings; `replicas` copies in a NATS cluster
/// (`--nats-replicas`), so that it outlives a server.
fn config(replicas: usize) -> stream::Config {
    stream::Config {
        name: STREAM.into(),
        description: Some(
            "tickfeed: last tick and book per symbol, the universe and the epoch (docs/scaling.md)"
                .into(),
        ),
        subjects: vec![
            ALL_TICKS.into(),
            ALL_BOOKS.into(),
            UNIVERSE.into(),
            EPOCH.into(),
        ],
        max_messages_per_subject: 1,
        discard: DiscardPolicy::Old,
        storage: StorageType::File,
        allow_direct: true,
        num_replicas: replicas,
        ..Default::default()
    }
}

const OPEN: &str = "open or create (is JetStream enabled? start nats-server with -js)";

impl LastValues {
    /// Opens the stream, creating it if this is the first node to start
    /// (an edge: the source decides what the stream keeps).
    pub async fn open(client: async_nats::Client, replicas: usize) -> Result<Self, StoreError> {
        let context = context(client);
        let stream = context
            .get_or_create_stream(config(replicas))
            .await
            .map_err(|e| broker(OPEN)(e.into()))?;
        Ok(Self {
            context,
            stream,
            replicas,
        })
    }

    /// The copies of the stream this node asks a cluster to keep.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Opens the stream for the source, creating it or bringing its
    /// settings up to date (a stream made by an older tickfeed lacks the
    /// epoch's subject).
    pub async fn open_for_source(
        client: async_nats::Client,
        replicas: usize,
    ) -> Result<Self, StoreError> {
        let context = context(client);
        context
            .create_or_update_stream(config(replicas))
            .await
            .map_err(|e| broker(OPEN)(e.into()))?;
        let stream = context
            .get_stream(STREAM)
            .await
            .map_err(|e| broker(OPEN)(e.into()))?;
        Ok(Self {
            context,
            stream,
            replicas,
        })
    }

    /// The epoch the source stored, if any.
    pub async fn epoch(&self) -> Result<Option<String>, StoreError> {
        match self.stream.direct_get_last_for_subject(EPOCH).await {
            Ok(message) => payload::decode_epoch(&message.payload)
                .map(Some)
                .map_err(|cause| StoreError::Payload {
                    subject: EPOCH.into(),
                    cause,
                }),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(broker("direct get")(e.into())),
        }
    }

    /// Stores the source's epoch and waits until the broker has it, so
    /// that an edge that reads it next finds it.
    pub async fn store_epoch(&self, epoch: &str) -> Result<(), StoreError> {
        let ack = self
            .context
            .publish(EPOCH, payload::encode_epoch(epoch))
            .await
            .map_err(|e| broker("store the epoch")(e.into()))?;
        ack.await.map_err(|e| broker("store the epoch")(e.into()))?;
        Ok(())
    }

    /// The latest tick of `symbol`, if the stream has one.
    pub async fn last(&self, symbol: &Arc<str>) -> Result<Option<Tick>, StoreError> {
        let subject = subject::for_symbol(symbol);
        match self
            .stream
            .direct_get_last_for_subject(subject.as_str())
            .await
        {
            Ok(message) => payload::decode_tick(symbol.clone(), &message.payload)
                .map(Some)
                .map_err(|cause| StoreError::Payload { subject, cause }),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(broker("direct get")(e.into())),
        }
    }

    /// The latest book of `symbol`, if the stream has one.
    pub async fn last_book(&self, symbol: &Arc<str>) -> Result<Option<BookEvent>, StoreError> {
        let subject = subject::book_of(symbol);
        match self
            .stream
            .direct_get_last_for_subject(subject.as_str())
            .await
        {
            Ok(message) => book::decode_book(symbol.clone(), &message.payload)
                .map(Some)
                .map_err(|cause| StoreError::Payload { subject, cause }),
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(None),
            Err(e) => Err(broker("direct get")(e.into())),
        }
    }

    /// The universe the source last declared (empty before it did).
    pub async fn universe(&self) -> Result<Vec<Arc<str>>, StoreError> {
        match self.stream.direct_get_last_for_subject(UNIVERSE).await {
            Ok(message) => {
                payload::decode_universe(&message.payload).map_err(|cause| StoreError::Payload {
                    subject: UNIVERSE.into(),
                    cause,
                })
            }
            Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(Vec::new()),
            Err(e) => Err(broker("direct get")(e.into())),
        }
    }

    /// The latest tick of every symbol. Ticks that cannot be read are
    /// skipped with a warning.
    pub async fn all_last(&self) -> Result<Vec<Tick>, StoreError> {
        self.last_per_subject(ALL_TICKS, subject::symbol_of, payload::decode_tick)
            .await
    }

    /// The latest book of every symbol, as [`all_last`](Self::all_last).
    pub async fn all_last_books(&self) -> Result<Vec<BookEvent>, StoreError> {
        self.last_per_subject(ALL_BOOKS, subject::symbol_of_book, book::decode_book)
            .await
    }

    /// The last message of every subject under `filter`, read through a
    /// temporary consumer that delivers the last message of each, decoded
    /// with the symbol its subject names; messages that cannot be read are
    /// skipped with a warning.
    async fn last_per_subject<T>(
        &self,
        filter: &str,
        symbol_of: fn(&str) -> Option<Cow<'_, str>>,
        decode: fn(Arc<str>, &[u8]) -> Result<T, PayloadError>,
    ) -> Result<Vec<T>, StoreError> {
        let reader = self
            .stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::LastPerSubject,
                filter_subject: filter.into(),
                ack_policy: AckPolicy::None,
                inactive_threshold: READER_IDLE,
                memory_storage: true,
                ..Default::default()
            })
            .await
            .map_err(|e| broker("create reader")(e.into()))?;
        let name = reader.cached_info().name.clone();
        let mut left = reader.cached_info().num_pending as usize;
        let mut values = Vec::with_capacity(left);
        while left > 0 {
            let mut batch = reader
                .fetch()
                .max_messages(left)
                .messages()
                .await
                .map_err(|e| broker("fetch last values")(e.into()))?;
            let before = left;
            while let Some(message) = batch.next().await {
                let message = message.map_err(broker("fetch last values"))?;
                left = left.saturating_sub(1);
                let Some(symbol) = symbol_of(&message.subject) else {
                    continue;
                };
                match decode(Arc::from(&*symbol), &message.payload) {
                    Ok(value) => values.push(value),
                    Err(e) => {
                        tracing::warn!(subject = %message.subject, "skipping a stored value: {e}")
                    }
                }
            }
            if left == before {
                break;
            }
        }
        if let Err(e) = self.stream.delete_consumer(&name).await {
            tracing::debug!("removing reader {name}: {e}");
        }
        Ok(values)
    }
}
