//! The router: the one owner of topic state (which client wants which
//! symbol) and the only writer of the symbol table.
//!
//! It runs as a single task fed by two bounded channels: batches from the
//! source and commands from sessions. Because both are handled by one task,
//! "register a subscriber and read the latest tick for its snapshot" is
//! atomic with respect to updates: no tick is lost or repeated between a
//! snapshot and the live stream. Fan-out marks each subscriber's mailbox
//! (`conflate`), which never blocks, so a slow client never delays the
//! router or any other client.
//!
//! An on-demand source (the NATS edge, `nats::edge`) is told which symbols
//! local clients want through [`Interest`]; a subscribe that makes a symbol
//! wanted is answered once that source has routed its latest value
//! (`SourceMsg::Ready`), so the snapshot is current. Without such a source
//! none of this runs.

use crate::clock::now_ns;
use crate::codec::EncodedTick;
use crate::conflate::Mailbox;
use crate::history::{DEFAULT_HISTORY, DEFAULT_HISTORY_MEMORY, Retention};
use crate::protocol::{SymbolSet, Tick, WILDCARD};
use crate::shutdown::{DoneGuard, Shutdown};
use crate::source::{SourceMsg, SourceReceiver};
use crate::stats::{Stage, Stats, record_latencies};
use crate::symbols::{SymbolId, SymbolTable};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};

/// Identifies one connection to the router.
pub type ClientId = u64;

/// Commands queued per session before it waits; sessions send one at a time
/// and wait for the reply, so this only absorbs bursts of many sessions.
const COMMAND_QUEUE: usize = 1024;

/// A symbol granted to a subscriber, with its latest tick at the moment it
/// was registered (the snapshot, and the baseline for `n`).
#[derive(Debug)]
pub struct Grant {
    pub id: SymbolId,
    pub latest: Option<Arc<EncodedTick>>,
}

/// Reply to a subscribe.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub granted: Vec<Grant>,
    /// Requested names the router does not know.
    pub unknown: Vec<String>,
}

#[derive(Debug)]
enum Command {
    Subscribe {
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: SymbolSet,
        reply: oneshot::Sender<Subscribed>,
    },
    Unsubscribe {
        client: ClientId,
        symbols: SymbolSet,
        reply: oneshot::Sender<Vec<SymbolId>>,
    },
    Leave {
        client: ClientId,
    },
}

/// A change in local interest, reported to an on-demand source (the NATS
/// edge) so that it fetches only what local clients want. The name
/// [`WILDCARD`] (`*`) stands for "every symbol".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interest {
    /// The first subscriber of a symbol (or the first `*`). The source starts
    /// delivering it, routes its latest value, then answers with
    /// `SourceMsg::Ready`; the subscribes that caused this wait for that.
    Wanted(Arc<str>),
    /// The last subscriber of a symbol (or of `*`) left.
    Unwanted(Arc<str>),
}

/// Where the router reports [`Interest`]. Unbounded on purpose: the router
/// must never wait on its source, and each message stands for a
/// subscription change a session already made (at most one per symbol per
/// command), so the queue grows only as fast as sessions issue commands.
pub type InterestSender = mpsc::UnboundedSender<Interest>;

/// A subscribe waiting for the latest values of some of its symbols.
#[derive(Debug)]
struct Parked {
    /// Names still warming (see [`Interest::Wanted`]).
    waiting: Vec<Arc<str>>,
    /// `*`: grant every symbol known when answered.
    all: bool,
    ids: Vec<SymbolId>,
    unknown: Vec<String>,
    reply: oneshot::Sender<Subscribed>,
}

/// The router has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("router stopped")]
pub struct RouterGone;

/// Cheap-to-clone handle sessions use to reach the router.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    commands: mpsc::Sender<Command>,
    table: Arc<SymbolTable>,
}

impl RouterHandle {
    pub fn table(&self) -> &Arc<SymbolTable> {
        &self.table
    }

    /// Registers `mailbox` for `symbols` and returns the grants with their
    /// latest ticks, atomically with respect to routing.
    pub async fn subscribe(
        &self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: SymbolSet,
    ) -> Result<Subscribed, RouterGone> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe {
                client,
                mailbox,
                symbols,
                reply,
            })
            .await
            .map_err(|_| RouterGone)?;
        rx.await.map_err(|_| RouterGone)
    }

    /// Removes `symbols` (or everything, for `All`); returns the ids removed.
    pub async fn unsubscribe(
        &self,
        client: ClientId,
        symbols: SymbolSet,
    ) -> Result<Vec<SymbolId>, RouterGone> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Unsubscribe {
                client,
                symbols,
                reply,
            })
            .await
            .map_err(|_| RouterGone)?;
        rx.await.map_err(|_| RouterGone)
    }

    /// Forgets a client that disconnected. Never waits for the router.
    pub fn leave(&self, client: ClientId) {
        let commands = self.commands.clone();
        if commands.try_send(Command::Leave { client }).is_err() {
            tokio::spawn(async move {
                let _ = commands.send(Command::Leave { client }).await;
            });
        }
    }
}

#[derive(Debug)]
struct Subscriber {
    client: ClientId,
    mailbox: Arc<Mailbox>,
}

/// Router state; owned by the router task alone.
pub struct Router {
    table: Arc<SymbolTable>,
    stats: Arc<Stats>,
    ids: HashMap<Arc<str>, SymbolId>,
    /// Recent updates of every symbol, within `--history` and
    /// `--history-memory`.
    retention: Retention,
    topics: Vec<Vec<Subscriber>>,
    wildcard: Vec<Subscriber>,
    /// Symbols each client holds explicitly, to leave in O(subscriptions).
    clients: HashMap<ClientId, HashSet<SymbolId>>,
    dropped_table_full: u64,
    /// Reports interest to an on-demand source; `None` for a local source.
    interest: Option<InterestSender>,
    /// Names reported `Wanted` whose `Ready` has not come yet.
    warming: HashSet<Arc<str>>,
    /// Subscribes waiting for some of `warming`.
    parked: Vec<Parked>,
    /// Fired once the source's first message is handled (see `first_message`).
    first_message: Option<oneshot::Sender<()>>,
}

impl Router {
    pub fn new(table: Arc<SymbolTable>, stats: Arc<Stats>) -> Self {
        Self {
            table,
            stats,
            ids: HashMap::new(),
            retention: Retention::new(DEFAULT_HISTORY, DEFAULT_HISTORY_MEMORY),
            topics: Vec::new(),
            wildcard: Vec::new(),
            clients: HashMap::new(),
            dropped_table_full: 0,
            interest: None,
            warming: HashSet::new(),
            parked: Vec::new(),
            first_message: None,
        }
    }

    /// Resolves once the source's first message (normally its symbol list)
    /// has been handled, so a server can take clients only when `hello`
    /// and `symbols` already show the universe.
    pub fn first_message(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.first_message = Some(tx);
        rx
    }

    /// Keeps up to `per_symbol` recent updates of each symbol, within
    /// `budget_bytes` over all of them (see `history`).
    pub fn with_history(mut self, per_symbol: usize, budget_bytes: usize) -> Self {
        self.retention = Retention::new(per_symbol, budget_bytes);
        self
    }

    /// Reports [`Interest`] to `interest` and holds subscribes until the
    /// source has routed their symbols' latest values.
    pub fn with_interest(mut self, interest: InterestSender) -> Self {
        self.interest = Some(interest);
        self
    }

    /// Starts the router task; returns the handle sessions use.
    pub fn spawn(
        self,
        source: SourceReceiver,
        shutdown: Shutdown,
        done: DoneGuard,
    ) -> RouterHandle {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let handle = RouterHandle {
            commands: tx,
            table: self.table.clone(),
        };
        tokio::spawn(async move {
            self.run(source, rx, shutdown).await;
            drop(done);
        });
        handle
    }

    async fn run(
        mut self,
        mut source: SourceReceiver,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: Shutdown,
    ) {
        let mut source_open = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                Some(command) = commands.recv() => self.handle(command),
                msg = source.recv(), if source_open => {
                    match msg {
                        Some(SourceMsg::Declare(names)) => {
                            for name in names {
                                self.intern(&name);
                            }
                        }
                        Some(SourceMsg::Ticks(batch)) => self.route(batch),
                        Some(SourceMsg::Ready(names)) => self.ready(&names),
                        None => {
                            tracing::info!("source finished; serving the last values");
                            source_open = false;
                        }
                    }
                    if let Some(first) = self.first_message.take() {
                        let _ = first.send(());
                    }
                }
            }
        }
    }

    /// The id of `name`, creating the symbol on first sight.
    fn intern(&mut self, name: &Arc<str>) -> Option<SymbolId> {
        if let Some(id) = self.ids.get(name) {
            return Some(*id);
        }
        match self.table.push(name.clone()) {
            Ok(id) => {
                self.ids.insert(name.clone(), id);
                self.topics.push(Vec::new());
                Some(id)
            }
            Err(full) => {
                if self.dropped_table_full == 0 {
                    tracing::warn!(symbol = %name, "{full}; its updates are dropped");
                }
                self.dropped_table_full += 1;
                None
            }
        }
    }

    /// Fans a batch out: retain each tick in its symbol's ring, store it as
    /// the latest, then mark the mailbox of every subscriber.
    pub fn route(&mut self, batch: Vec<Tick>) {
        record_latencies(
            &self.stats,
            Stage::Route,
            now_ns(),
            batch.iter().map(|t| t.ts),
        );
        self.stats
            .ticks_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for tick in batch {
            let Some(id) = self.intern(&tick.sym) else {
                continue;
            };
            let tick = Arc::new(EncodedTick::new(tick));
            self.retention.store(&self.table, id, &tick);
            self.table.store(id, tick);
            for sub in self.topics[id as usize].iter().chain(&self.wildcard) {
                sub.mailbox.mark(id);
            }
        }
        self.stats.history.publish(&self.retention.status());
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                client,
                mailbox,
                symbols,
                reply,
            } => {
                let all = matches!(symbols, SymbolSet::All);
                let subscribed = self.subscribe(client, mailbox, symbols);
                self.reply_when_warm(subscribed, all, reply);
            }
            Command::Unsubscribe {
                client,
                symbols,
                reply,
            } => {
                let _ = reply.send(self.unsubscribe(client, symbols));
            }
            Command::Leave { client } => {
                self.unsubscribe(client, SymbolSet::All);
            }
        }
    }

    fn grant(&self, id: SymbolId) -> Grant {
        Grant {
            id,
            latest: self.table.cell(id).latest(),
        }
    }

    pub fn subscribe(
        &mut self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: SymbolSet,
    ) -> Subscribed {
        let mut reply = Subscribed::default();
        match symbols {
            SymbolSet::All => {
                if !self.wildcard.iter().any(|s| s.client == client) {
                    if self.wildcard.is_empty() {
                        self.want([Arc::from(WILDCARD)]);
                    }
                    self.wildcard.push(Subscriber { client, mailbox });
                }
                reply.granted = (0..self.topics.len() as SymbolId)
                    .map(|id| self.grant(id))
                    .collect();
            }
            SymbolSet::Named(names) => {
                let held = self.clients.entry(client).or_default();
                let mut first = Vec::new();
                for name in names {
                    let Some(&id) = self.ids.get(name.as_str()) else {
                        reply.unknown.push(name);
                        continue;
                    };
                    if held.insert(id) {
                        if self.topics[id as usize].is_empty() {
                            first.push(id);
                        }
                        self.topics[id as usize].push(Subscriber {
                            client,
                            mailbox: mailbox.clone(),
                        });
                    }
                    reply.granted.push(Grant {
                        id,
                        latest: self.table.cell(id).latest(),
                    });
                }
                self.want(self.names(&first));
            }
        }
        reply
    }

    fn names(&self, ids: &[SymbolId]) -> Vec<Arc<str>> {
        ids.iter()
            .filter_map(|&id| self.table.cell(id).name().cloned())
            .collect()
    }

    /// Reports names that just got their first subscriber.
    fn want(&mut self, names: impl IntoIterator<Item = Arc<str>>) {
        let Some(interest) = &self.interest else {
            return;
        };
        for name in names {
            if interest.send(Interest::Wanted(name.clone())).is_ok() {
                self.warming.insert(name);
            }
        }
    }

    /// Reports names whose last subscriber left.
    fn unwant(&self, names: impl IntoIterator<Item = Arc<str>>) {
        let Some(interest) = &self.interest else {
            return;
        };
        for name in names {
            let _ = interest.send(Interest::Unwanted(name));
        }
    }

    /// Answers a subscribe now, or once every one of its symbols that is
    /// still warming is [`ready`](Self::ready).
    fn reply_when_warm(
        &mut self,
        subscribed: Subscribed,
        all: bool,
        reply: oneshot::Sender<Subscribed>,
    ) {
        let waiting: Vec<Arc<str>> = if self.warming.is_empty() {
            Vec::new()
        } else if all {
            self.warming.iter().cloned().collect()
        } else {
            let granted: Vec<SymbolId> = subscribed.granted.iter().map(|g| g.id).collect();
            self.names(&granted)
                .into_iter()
                .filter(|n| self.warming.contains(n))
                .collect()
        };
        if waiting.is_empty() {
            let _ = reply.send(subscribed);
            return;
        }
        self.parked.push(Parked {
            waiting,
            all,
            ids: subscribed.granted.iter().map(|g| g.id).collect(),
            unknown: subscribed.unknown,
            reply,
        });
    }

    /// The source has routed the latest values of `names`: answers the
    /// subscribes that no longer wait for anything, with those values as
    /// their snapshots.
    fn ready(&mut self, names: &[Arc<str>]) {
        for name in names {
            self.warming.remove(name);
        }
        for mut parked in std::mem::take(&mut self.parked) {
            parked.waiting.retain(|n| self.warming.contains(n));
            if !parked.waiting.is_empty() {
                self.parked.push(parked);
                continue;
            }
            let granted = if parked.all {
                (0..self.topics.len() as SymbolId)
                    .map(|id| self.grant(id))
                    .collect()
            } else {
                parked.ids.into_iter().map(|id| self.grant(id)).collect()
            };
            let _ = parked.reply.send(Subscribed {
                granted,
                unknown: parked.unknown,
            });
        }
    }

    /// Removes subscriptions. Returns the ids of every named symbol that
    /// exists (held or not, so a session can exclude it from `*`), or for
    /// `All` the ids that were held.
    pub fn unsubscribe(&mut self, client: ClientId, symbols: SymbolSet) -> Vec<SymbolId> {
        let held = self.clients.get_mut(&client);
        let (ids, removed): (Vec<SymbolId>, Vec<SymbolId>) = match symbols {
            SymbolSet::All => {
                let had_wildcard = !self.wildcard.is_empty();
                self.wildcard.retain(|s| s.client != client);
                if had_wildcard && self.wildcard.is_empty() {
                    self.unwant([Arc::from(WILDCARD)]);
                }
                let removed: Vec<SymbolId> =
                    self.clients.remove(&client).into_iter().flatten().collect();
                (removed.clone(), removed)
            }
            SymbolSet::Named(names) => {
                let ids: Vec<SymbolId> = names
                    .iter()
                    .filter_map(|name| self.ids.get(name.as_str()).copied())
                    .collect();
                let removed = match held {
                    Some(held) => ids.iter().copied().filter(|id| held.remove(id)).collect(),
                    None => Vec::new(),
                };
                (ids, removed)
            }
        };
        let mut last = Vec::new();
        for &id in &removed {
            self.topics[id as usize].retain(|s| s.client != client);
            if self.topics[id as usize].is_empty() {
                last.push(id);
            }
        }
        self.unwant(self.names(&last));
        ids
    }

    /// Subscribers of one symbol, not counting `*` (for tests and stats).
    pub fn subscriber_count(&self, id: SymbolId) -> usize {
        self.topics.get(id as usize).map_or(0, Vec::len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tick(sym: &str, seq: u64) -> Tick {
        Tick::test(sym, seq)
    }

    fn pending(mailbox: &Mailbox) -> Vec<SymbolId> {
        let mut ids = Vec::new();
        mailbox.drain(|id| ids.push(id));
        ids
    }

    fn router() -> Router {
        Router::new(Arc::new(SymbolTable::new(64)), Arc::new(Stats::new()))
    }

    fn named(names: &[&str]) -> SymbolSet {
        SymbolSet::Named(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn updates_reach_only_subscribers_and_the_latest_wins() {
        let mut r = router();
        r.route(vec![tick("AAPL", 1), tick("MSFT", 1)]);
        let (a, b) = (Arc::new(Mailbox::new(64)), Arc::new(Mailbox::new(64)));
        let sub = r.subscribe(1, a.clone(), named(&["AAPL", "NOPE"]));
        assert_eq!(sub.unknown, ["NOPE"]);
        assert_eq!(
            sub.granted[0].latest.as_ref().unwrap().seq(),
            1,
            "snapshot baseline"
        );
        r.subscribe(2, b.clone(), named(&["MSFT"]));
        r.route(vec![tick("AAPL", 2), tick("AAPL", 3), tick("AAPL", 4)]);
        assert_eq!(pending(&a), [0]);
        assert!(pending(&b).is_empty());
        assert_eq!(r.table.cell(0).latest_seq(), 4, "conflated to the latest");
    }

    #[test]
    fn wildcard_includes_symbols_that_appear_later() {
        let mut r = router();
        let m = Arc::new(Mailbox::new(64));
        assert!(r.subscribe(1, m.clone(), SymbolSet::All).granted.is_empty());
        r.route(vec![tick("NEW", 1)]);
        assert_eq!(pending(&m), [0]);
    }

    #[test]
    fn resubscribing_never_creates_a_second_stream_and_leave_cleans_up() {
        let mut r = router();
        r.route(vec![tick("AAPL", 1)]);
        let m = Arc::new(Mailbox::new(64));
        r.subscribe(1, m.clone(), named(&["AAPL"]));
        r.subscribe(1, m.clone(), named(&["AAPL"]));
        assert_eq!(r.subscriber_count(0), 1);
        assert_eq!(r.unsubscribe(1, named(&["AAPL"])), [0]);
        assert_eq!(r.subscriber_count(0), 0);
        r.subscribe(1, m.clone(), named(&["AAPL"]));
        r.subscribe(1, m, SymbolSet::All);
        r.unsubscribe(1, SymbolSet::All);
        assert_eq!(
            (r.subscriber_count(0), r.wildcard.len(), r.clients.len()),
            (0, 0, 0)
        );
    }

    /// Sends a subscribe the way a session does; the reply comes later.
    fn subscribe_command(
        r: &mut Router,
        client: ClientId,
        symbols: SymbolSet,
    ) -> oneshot::Receiver<Subscribed> {
        let (reply, rx) = oneshot::channel();
        let mailbox = Arc::new(Mailbox::new(64));
        r.handle(Command::Subscribe {
            client,
            mailbox,
            symbols,
            reply,
        });
        rx
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<Interest>) -> Vec<Interest> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn interest_is_reported_on_first_and_last_subscriber_and_waits_for_the_latest_value() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = router().with_interest(tx);
        r.intern(&"AAPL".into());
        let wanted = |name: &str| Interest::Wanted(name.into());
        let unwanted = |name: &str| Interest::Unwanted(name.into());

        let mut first = subscribe_command(&mut r, 1, named(&["AAPL"]));
        assert_eq!(drain(&mut rx), [wanted("AAPL")]);
        assert!(first.try_recv().is_err(), "held until the source is ready");
        r.route(vec![tick("AAPL", 7)]);
        r.ready(&["AAPL".into()]);
        let granted = first.try_recv().expect("answered once ready").granted;
        assert_eq!(
            granted[0].latest.as_ref().unwrap().seq(),
            7,
            "snapshot is the fetched value"
        );

        let mut second = subscribe_command(&mut r, 2, named(&["AAPL"]));
        assert!(
            second.try_recv().is_ok(),
            "already wanted: answered at once"
        );
        r.unsubscribe(1, named(&["AAPL"]));
        assert!(drain(&mut rx).is_empty(), "one subscriber left");
        r.handle(Command::Leave { client: 2 });
        assert_eq!(drain(&mut rx), [unwanted("AAPL")]);

        let mut all = subscribe_command(&mut r, 3, SymbolSet::All);
        let mut also_all = subscribe_command(&mut r, 4, SymbolSet::All);
        assert_eq!(drain(&mut rx), [wanted("*")], "reported once");
        assert!(all.try_recv().is_err() && also_all.try_recv().is_err());
        r.ready(&["*".into()]);
        assert_eq!(all.try_recv().unwrap().granted.len(), 1);
        assert!(also_all.try_recv().is_ok());
        r.unsubscribe(3, SymbolSet::All);
        r.unsubscribe(4, SymbolSet::All);
        assert_eq!(drain(&mut rx), [unwanted("*")]);
    }

    #[test]
    fn without_an_interest_hook_subscribes_are_answered_at_once() {
        let mut r = router();
        r.intern(&"AAPL".into());
        assert!(
            subscribe_command(&mut r, 1, named(&["AAPL"]))
                .try_recv()
                .is_ok()
        );
        assert!(
            subscribe_command(&mut r, 2, SymbolSet::All)
                .try_recv()
                .is_ok()
        );
    }
}
