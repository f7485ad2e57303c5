//! Sessions driven end to end over channel-backed sockets, with a real
//! router and tokio's paused clock: the keep-up rule and flow control are
//! checked for prompt, bursty and slow readers in virtual time, so data
//! ages are exact and nothing depends on the machine's speed.
//!
//! A scripted reader plays the client: it takes frames off the session's
//! outbound channel and answers each ping with a pong when it reads it, as
//! tungstenite and browsers do, spending its scripted time after each data
//! frame.

use super::*;
use crate::router::Router;
use crate::sequence::{SeqByName, Verdict};
use crate::shutdown::ShutdownTrigger;
use crate::source::{SourceMsg, SourceSender};
use crate::symbols::SymbolTable;
use futures_channel::mpsc;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A socket made of two channels: what the test sends in, what the
/// session writes out.
struct ChannelSocket {
    inbound: mpsc::UnboundedReceiver<Result<Message, ChannelError>>,
    outbound: mpsc::UnboundedSender<Message>,
}

#[derive(Debug)]
struct ChannelError;

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("channel closed")
    }
}

impl SocketError for ChannelError {
    fn is_too_big(&self) -> bool {
        false
    }
}

impl Stream for ChannelSocket {
    type Item = Result<Message, ChannelError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inbound).poll_next(cx)
    }
}

impl Sink<Message> for ChannelSocket {
    type Error = ChannelError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ChannelError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), ChannelError> {
        self.outbound.unbounded_send(item).map_err(|_| ChannelError)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ChannelError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ChannelError>> {
        Poll::Ready(Ok(()))
    }
}

fn events(message: &Message) -> Vec<serde_json::Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];
const MAX_LAG: Duration = Duration::from_millis(500);

/// A router with [`SYMBOLS`] and one session on channels.
struct Harness {
    source: SourceSender,
    to_session: mpsc::UnboundedSender<Result<Message, ChannelError>>,
    from_session: mpsc::UnboundedReceiver<Message>,
    session: tokio::task::JoinHandle<Stop>,
    stats: Arc<Stats>,
    /// The session's `hello`.
    hello: serde_json::Value,
    _trigger: ShutdownTrigger,
}

impl Harness {
    async fn start(max_lag: Duration) -> Self {
        Self::start_with(max_lag, None).await
    }

    async fn start_with(max_lag: Duration, backfill: Option<Backfill>) -> Self {
        let trigger = ShutdownTrigger::new();
        let (source, source_rx) = crate::source::channel();
        let stats = Arc::new(Stats::new());
        let router = Router::new(Arc::new(SymbolTable::new(64)), stats.clone()).spawn(
            source_rx,
            trigger.subscribe(),
            trigger.guard(),
        );
        source
            .send(SourceMsg::Declare(
                SYMBOLS.iter().map(|s| (*s).into()).collect(),
            ))
            .await
            .unwrap();
        let settings = Arc::new(SessionSettings {
            router,
            stats: stats.clone(),
            limits: Limits::default(),
            heartbeat: Duration::from_secs(3600),
            stall_timeout: Duration::from_secs(30),
            max_frame_bytes: 1 << 16,
            min_write_interval: Duration::ZERO,
            max_lag,
            server_name: "tickfeed test".into(),
            backfill,
        });
        let (to_session, inbound) = mpsc::unbounded();
        let (outbound, from_session) = mpsc::unbounded();
        let socket = ChannelSocket { inbound, outbound };
        let session = tokio::spawn(
            Session::new(socket, settings, 1, Encoding::Json).run("s1".into(), trigger.subscribe()),
        );
        let mut harness = Self {
            source,
            to_session,
            from_session,
            session,
            stats,
            hello: serde_json::Value::Null,
            _trigger: trigger,
        };
        harness.hello = events(&harness.next_message().await).remove(0);
        assert_eq!(harness.hello["ev"], "hello");
        harness
    }

    /// Routes AAPL's updates `seqs`.
    async fn publish(&self, seqs: impl IntoIterator<Item = u64>) {
        let batch = seqs
            .into_iter()
            .map(|seq| crate::protocol::Tick::test("AAPL", seq))
            .collect();
        self.source.send(SourceMsg::Ticks(batch)).await.unwrap();
    }

    async fn next_message(&mut self) -> Message {
        self.from_session.next().await.expect("session open")
    }

    fn send(&self, request: &str) {
        self.to_session
            .unbounded_send(Ok(Message::text(request)))
            .unwrap();
    }

    /// Subscribes to every symbol, without snapshots.
    async fn subscribe_all(&mut self) {
        self.send(r#"{"op":"subscribe","id":1,"symbols":["AAPL","MSFT","NVDA"],"snapshot":false}"#);
        assert_eq!(events(&self.next_message().await)[0]["ev"], "ack");
    }

    /// Feeds `per_symbol_hz` updates a second of every symbol for
    /// `duration` of virtual time; `ts` is virtual nanoseconds since `t0`.
    fn feed(&self, t0: Instant, per_symbol_hz: u64, duration: Duration) {
        let source = self.source.clone();
        tokio::spawn(async move {
            let step = Duration::from_secs(1) / per_symbol_hz as u32;
            let mut seq = 0;
            while t0.elapsed() < duration {
                tokio::time::sleep(step).await;
                seq += 1;
                let ts = t0.elapsed().as_nanos() as u64;
                let batch = SYMBOLS
                    .iter()
                    .map(|s| {
                        let mut tick = crate::protocol::Tick::test(s, seq);
                        tick.ts = ts;
                        tick
                    })
                    .collect();
                if source.send(SourceMsg::Ticks(batch)).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// What a scripted reader saw.
#[derive(Debug, Default)]
struct Seen {
    events: u64,
    merged: u64,
    /// Oldest data read after the first 5 s (virtual ms).
    max_age_after_5s: u64,
}

/// How long the reader spends after reading a data frame of `events`
/// events that it got at `elapsed` since the start.
type Script = fn(elapsed: Duration, events: u64) -> Duration;

/// Reads until `until` (virtual), checking the invariant on every tick and
/// answering pings when it reads them.
async fn read_as(harness: &mut Harness, t0: Instant, until: Duration, script: Script) -> Seen {
    let mut seen = Seen::default();
    let mut last = SeqByName::new();
    while t0.elapsed() < until {
        let message = harness.next_message().await;
        if let Message::Ping(payload) = message {
            harness
                .to_session
                .unbounded_send(Ok(Message::Pong(payload)))
                .unwrap();
            continue;
        }
        let now = t0.elapsed();
        let ticks = events(&message);
        let in_frame = ticks.len() as u64;
        for tick in ticks {
            let n = tick["n"].as_u64().unwrap();
            assert_eq!(
                last.observe_json(&tick),
                Verdict::Ok,
                "invariant broken at {tick}"
            );
            seen.events += 1;
            seen.merged += n;
            if now >= Duration::from_secs(5) {
                let age = now.as_millis() as u64 - tick["ts"].as_u64().unwrap() / 1_000_000;
                seen.max_age_after_5s = seen.max_age_after_5s.max(age);
            }
        }
        let pause = script(now, in_frame);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn session_over_channels_says_hello_answers_and_streams() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.send(r#"{"op":"subscribe","id":1,"symbols":["AAPL"]}"#);
    assert_eq!(events(&harness.next_message().await)[0]["ev"], "ack");
    let tick = crate::protocol::Tick::test("AAPL", 1);
    harness
        .source
        .send(SourceMsg::Ticks(vec![tick]))
        .await
        .unwrap();
    let live = events(&harness.next_message().await);
    assert_eq!(
        (live[0]["sym"].as_str(), live[0]["seq"].as_u64()),
        (Some("AAPL"), Some(1))
    );
    drop(harness.to_session);
    assert_eq!(harness.session.await.unwrap(), Stop::ClientClosed);
}

#[tokio::test(start_paused = true)]
async fn a_prompt_reader_gets_every_update_with_n_zero() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    let t0 = Instant::now();
    harness.feed(t0, 500, Duration::from_secs(10));
    let seen = read_as(&mut harness, t0, Duration::from_secs(9), |_, _| {
        Duration::ZERO
    })
    .await;
    assert_eq!(seen.merged, 0);
    assert!(seen.events > 10_000, "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_bursty_reader_that_stops_100_ms_every_second_misses_nothing() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    let t0 = Instant::now();
    harness.feed(t0, 500, Duration::from_secs(10));
    let burst = |elapsed: Duration, _| {
        let into_second = elapsed.as_millis() % 1000;
        if into_second < 10 {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        }
    };
    let seen = read_as(&mut harness, t0, Duration::from_secs(9), burst).await;
    assert_eq!(seen.merged, 0, "{seen:?}");
    assert!(
        harness.stats.flow_pauses.load(Ordering::Relaxed) > 0,
        "the window filled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reader_taking_500_ms_a_frame_reads_fresh_data_with_merge_counts() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    let t0 = Instant::now();
    harness.feed(t0, 200, Duration::from_secs(20));
    let seen = read_as(&mut harness, t0, Duration::from_secs(19), |_, _| {
        Duration::from_millis(500)
    })
    .await;
    assert!(seen.merged > 0, "{seen:?}");
    // One frame in flight, read 500 ms after it was written at most.
    assert!(seen.max_age_after_5s <= 600, "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reader_taking_50_ms_an_event_gets_small_fresh_frames() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    let t0 = Instant::now();
    harness.feed(t0, 200, Duration::from_secs(20));
    let per_event = |_, events: u64| Duration::from_millis(50) * events as u32;
    let seen = read_as(&mut harness, t0, Duration::from_secs(19), per_event).await;
    assert!(seen.merged > 0, "{seen:?}");
    // A frame of the three latest values takes it 150 ms.
    assert!(seen.max_age_after_5s < 1_000, "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reader_taking_50_ms_a_frame_keeps_up_through_larger_frames() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    let t0 = Instant::now();
    harness.feed(t0, 200, Duration::from_secs(20));
    let seen = read_as(&mut harness, t0, Duration::from_secs(19), |_, _| {
        Duration::from_millis(50)
    })
    .await;
    assert!(seen.max_age_after_5s < 1_000, "{seen:?}");
    assert!(seen.events > 10_000, "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_new_epoch_closes_the_connection_with_1012_before_any_of_its_ticks() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness.subscribe_all().await;
    harness.publish([7]).await;
    assert_eq!(events(&harness.next_message().await)[0]["seq"], 7);
    let epoch = SourceMsg::Epoch("a-new-one".into());
    harness.source.send(epoch).await.unwrap();
    harness.publish([1]).await;
    loop {
        match harness.next_message().await {
            Message::Ping(_) => continue,
            Message::Close(Some(frame)) => break assert_eq!(frame.code, 1012),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    assert_eq!(harness.session.await.unwrap(), Stop::EpochChanged);
}

/// Holds AAPL's updates 1 to 39 (a NATS source, for an edge that began
/// serving AAPL at 40).
#[derive(Debug)]
struct SourceHistory;

impl HistoryFetch for SourceHistory {
    fn fetch(
        &self,
        _epoch: &str,
        symbol: Arc<str>,
        range: crate::history::HistoryRange,
    ) -> futures_util::future::BoxFuture<'static, Result<Vec<crate::protocol::Tick>, FetchError>>
    {
        let until = range.until.unwrap_or(u64::MAX).min(39);
        let ticks = (range.after + 1..=until)
            .map(|seq| crate::protocol::Tick::test(&symbol, seq))
            .collect();
        Box::pin(async move { Ok(ticks) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_resume_past_the_ring_gets_the_rest_from_the_backfill_first() {
    let backfill = Backfill {
        fetch: Arc::new(SourceHistory),
        per_symbol: 1024,
    };
    let mut harness = Harness::start_with(MAX_LAG, Some(backfill)).await;
    harness.publish(40..=42).await;
    let epoch = harness.hello["epoch"].clone();
    let subscribe = serde_json::json!({"op": "subscribe", "id": 1, "symbols": ["AAPL"], "epoch": epoch, "from": {"AAPL": 30}});
    harness.send(&subscribe.to_string());
    let ack = events(&harness.next_message().await).remove(0);
    assert_eq!(ack["resumed"]["AAPL"], 0, "{ack}");
    let mut seqs = SeqByName::new();
    seqs.observe_json(&serde_json::json!({"sym": "AAPL", "seq": 30, "n": 0}));
    let mut got = Vec::new();
    while got.last() != Some(&42) {
        let message = harness.next_message().await;
        if matches!(message, Message::Ping(_)) {
            continue;
        }
        for tick in events(&message) {
            assert_eq!(seqs.observe_json(&tick), Verdict::Ok, "{tick}");
            assert_eq!(tick["n"], 0, "{tick}");
            got.push(tick["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(got, (31..=42).collect::<Vec<_>>());
}

impl Harness {
    /// The events of the next data frame, past any flow-control probe.
    async fn next_events(&mut self) -> Vec<serde_json::Value> {
        loop {
            match self.next_message().await {
                Message::Ping(_) => continue,
                message => return events(&message),
            }
        }
    }
}

/// AAPL's book with its best bid at `bid`, three levels a side.
fn aapl_book(bid: f64) -> crate::protocol::BookUpdate {
    let side = |first: f64, step: f64| (0..3).map(|i| (first + step * i as f64, 100)).collect();
    crate::protocol::BookUpdate {
        sym: "AAPL".into(),
        ts: crate::clock::now_ns(),
        xt: None,
        depth: crate::protocol::Depth {
            bids: side(bid, -0.01),
            asks: side(bid + 0.02, 0.01),
        },
    }
}

#[tokio::test(start_paused = true)]
async fn a_book_subscriber_gets_a_snapshot_then_each_change_at_its_depth() {
    let mut harness = Harness::start(MAX_LAG).await;
    harness
        .source
        .send(SourceMsg::Books(vec![aapl_book(10.0)]))
        .await
        .unwrap();
    harness.send(r#"{"op":"subscribe","id":4,"channel":"book","symbols":["AAPL"],"depth":99}"#);
    let refused = harness.next_events().await;
    assert_eq!(refused[0]["ev"], "error");
    assert!(refused[0]["msg"].as_str().unwrap().contains("field depth"));
    harness.send(r#"{"op":"subscribe","id":5,"channel":"book","symbols":["AAPL"],"depth":2}"#);
    let reply = harness.next_events().await;
    assert_eq!(
        (reply[0]["ev"].as_str(), reply[0]["channel"].as_str()),
        (Some("ack"), Some("book"))
    );
    let snap = &reply[1];
    assert_eq!(
        (
            snap["ev"].as_str(),
            snap["seq"].as_u64(),
            snap["snap"].as_bool()
        ),
        (Some("book"), Some(1), Some(true))
    );
    assert_eq!(snap["bids"], serde_json::json!([[10.0, 100], [9.99, 100]]));
    harness
        .source
        .send(SourceMsg::Books(vec![aapl_book(10.01)]))
        .await
        .unwrap();
    let live = harness.next_events().await;
    assert_eq!(
        (live[0]["seq"].as_u64(), live[0]["n"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        live[0]["asks"],
        serde_json::json!([[10.03, 100], [10.04, 100]])
    );
    assert!(live[0].get("snap").is_none());
    harness.send(r#"{"op":"unsubscribe","id":6,"channel":"book","symbols":["AAPL"]}"#);
    let ack = harness.next_events().await;
    assert_eq!(
        (ack[0]["op"].as_str(), ack[0]["channel"].as_str()),
        (Some("unsubscribe"), Some("book"))
    );
}
