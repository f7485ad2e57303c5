//! Interest and warming, for an on-demand source (the NATS edge): the
//! router reports a symbol's first and last local subscriber (of ticks or
//! bars) as [`Interest`], a bars subscriber of a symbol whose bars here
//! are not the source's yet, and a symbol's first and last book subscriber; it holds a subscribe that caused a report
//! until the source has routed the symbol's latest value (and handed over
//! its bars) and answered with `SourceMsg::Ready`, so that its snapshot is
//! current. With a local source none of this runs.

use super::{BarsSubscribed, BookSubscribed, Router, Subscribed};
use crate::bars::Timeframe;
use crate::symbols::SymbolId;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A change in local interest, reported to an on-demand source (the NATS
/// edge) so that it fetches only what local clients want. The name
/// [`WILDCARD`](crate::protocol::WILDCARD) (`*`) stands for "every symbol".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interest {
    /// The first subscriber of a symbol (or the first `*`). The source starts
    /// delivering it, routes its latest value, then answers with
    /// `SourceMsg::Ready`; the subscribes that caused this wait for that.
    Wanted(Arc<str>),
    /// A local client subscribes to the symbol's bars, and the bars here
    /// are not the source's yet. The source delivers the symbol as for
    /// `Wanted` unless it does already, hands over the source's bars of it
    /// (`SourceMsg::Bars`), then answers with `SourceMsg::Ready`.
    WantedBars(Arc<str>),
    /// The last subscriber of a symbol (or of `*`) left.
    Unwanted(Arc<str>),
    /// The first book subscriber of a symbol. The source starts delivering
    /// its books, routes its latest book (`SourceMsg::NumberedBooks`), then
    /// answers with `SourceMsg::Ready`.
    WantedBook(Arc<str>),
    /// The last book subscriber of a symbol left; its book here is dropped.
    UnwantedBook(Arc<str>),
}

/// Where the router reports [`Interest`]. Unbounded on purpose: the router
/// must never wait on its source, and each message stands for a
/// subscription change a session already made (at most one per symbol per
/// command), so the queue grows only as fast as sessions issue commands.
pub type InterestSender = mpsc::UnboundedSender<Interest>;

/// A subscribe waiting for the latest values of some of its symbols.
#[derive(Debug)]
pub(super) struct Parked {
    /// Names still warming (see [`Interest::Wanted`]).
    waiting: Vec<Arc<str>>,
    ids: Vec<SymbolId>,
    unknown: Vec<String>,
    reply: ParkedReply,
}

/// Where a parked subscribe's answer goes.
#[derive(Debug)]
enum ParkedReply {
    /// Ticks; `all` (`*`) grants every symbol known when answered.
    Ticks {
        all: bool,
        reply: oneshot::Sender<Subscribed>,
    },
    /// Bars of one timeframe: on an edge, their seed has come with the
    /// latest values, so the first final is counted when answered.
    Bars {
        tf: Timeframe,
        reply: oneshot::Sender<BarsSubscribed>,
    },
    /// Books: their snapshots are the latest books when answered.
    Book {
        reply: oneshot::Sender<BookSubscribed>,
    },
}

impl Router {
    /// Reports [`Interest`] to `interest` and holds subscribes until the
    /// source has routed their symbols' latest values. Such a source is a
    /// NATS edge's, a broker hop behind the source node: bars trail the
    /// clock further (`bars.rs`).
    pub fn with_interest(mut self, interest: InterestSender) -> Self {
        self.interest = Some(interest);
        self.bars.behind_a_broker();
        self
    }

    /// Reports names that just got their first subscriber.
    pub(super) fn want(&mut self, names: impl IntoIterator<Item = Arc<str>>) {
        self.report_warming(names, Interest::Wanted);
    }

    /// Reports names whose bars a client wants and which are not the
    /// source's here yet.
    pub(super) fn want_bars(&mut self, names: impl IntoIterator<Item = Arc<str>>) {
        self.report_warming(names, Interest::WantedBars);
    }

    /// Reports `names` as `make` says; each stays warming until a `Ready`
    /// answers each report of it.
    fn report_warming(
        &mut self,
        names: impl IntoIterator<Item = Arc<str>>,
        make: fn(Arc<str>) -> Interest,
    ) {
        let Some(interest) = &self.interest else {
            return;
        };
        for name in names {
            if interest.send(make(name.clone())).is_ok() {
                *self.warming.entry(name).or_insert(0) += 1;
            }
        }
    }

    /// Reports names that just got their first book subscriber.
    pub(super) fn want_book(&mut self, names: impl IntoIterator<Item = Arc<str>>) {
        self.report_warming(names, Interest::WantedBook);
    }

    /// Reports names whose last subscriber left.
    pub(super) fn unwant(&self, names: impl IntoIterator<Item = Arc<str>>) {
        self.report_leaving(names, Interest::Unwanted);
    }

    /// Reports names whose last book subscriber left.
    pub(super) fn unwant_book(&self, names: impl IntoIterator<Item = Arc<str>>) {
        self.report_leaving(names, Interest::UnwantedBook);
    }

    fn report_leaving(
        &self,
        names: impl IntoIterator<Item = Arc<str>>,
        make: fn(Arc<str>) -> Interest,
    ) {
        let Some(interest) = &self.interest else {
            return;
        };
        for name in names {
            let _ = interest.send(make(name));
        }
    }

    /// Answers a book subscribe of `ids` now, or once every one of them
    /// that is still warming is [`ready`](Self::ready).
    pub(super) fn reply_book_when_warm(
        &mut self,
        ids: Vec<SymbolId>,
        unknown: Vec<String>,
        reply: oneshot::Sender<BookSubscribed>,
    ) {
        let waiting = self.still_warming(&ids);
        if waiting.is_empty() {
            let _ = reply.send(self.book_granted(ids, unknown));
            return;
        }
        self.parked.push(Parked {
            waiting,
            ids,
            unknown,
            reply: ParkedReply::Book { reply },
        });
    }

    /// A book subscribe's answer: each symbol with its latest book.
    fn book_granted(&self, ids: Vec<SymbolId>, unknown: Vec<String>) -> BookSubscribed {
        let store = self.book.store();
        BookSubscribed {
            granted: ids.into_iter().map(|id| (id, store.latest(id))).collect(),
            unknown,
        }
    }

    /// Answers a subscribe now, or once every one of its symbols that is
    /// still warming is [`ready`](Self::ready).
    pub(super) fn reply_when_warm(
        &mut self,
        subscribed: Subscribed,
        all: bool,
        reply: oneshot::Sender<Subscribed>,
    ) {
        let ids: Vec<SymbolId> = subscribed.granted.iter().map(|g| g.id).collect();
        let waiting: Vec<Arc<str>> = if all {
            self.warming.keys().cloned().collect()
        } else {
            self.still_warming(&ids)
        };
        if waiting.is_empty() {
            let _ = reply.send(subscribed);
            return;
        }
        self.parked.push(Parked {
            waiting,
            ids,
            unknown: subscribed.unknown,
            reply: ParkedReply::Ticks { all, reply },
        });
    }

    /// Answers a bars subscribe of `ids` in `tf` now, or once every one
    /// of them that is still warming is [`ready`](Self::ready).
    pub(super) fn reply_bars_when_warm(
        &mut self,
        ids: Vec<SymbolId>,
        tf: Timeframe,
        unknown: Vec<String>,
        reply: oneshot::Sender<BarsSubscribed>,
    ) {
        let waiting = self.still_warming(&ids);
        if waiting.is_empty() {
            let _ = reply.send(self.bars_granted(ids, tf, unknown));
            return;
        }
        self.parked.push(Parked {
            waiting,
            ids,
            unknown,
            reply: ParkedReply::Bars { tf, reply },
        });
    }

    /// Which of `ids` are still warming.
    fn still_warming(&self, ids: &[SymbolId]) -> Vec<Arc<str>> {
        if self.warming.is_empty() {
            return Vec::new();
        }
        self.names(ids)
            .into_iter()
            .filter(|n| self.warming.contains_key(n))
            .collect()
    }

    /// A bars subscribe's answer: each symbol with the index of the first
    /// final it will be sent (the finals closed so far).
    fn bars_granted(
        &self,
        ids: Vec<SymbolId>,
        tf: Timeframe,
        unknown: Vec<String>,
    ) -> BarsSubscribed {
        let store = self.bars.store();
        BarsSubscribed {
            granted: ids
                .into_iter()
                .map(|id| (id, store.read(id, tf).finals))
                .collect(),
            unknown,
        }
    }

    /// The source has routed the latest values of `names` (one name for
    /// each report of it): answers the subscribes that no longer wait for
    /// anything, with those values as their snapshots.
    pub(super) fn ready(&mut self, names: &[Arc<str>]) {
        for name in names {
            if let Some(reports) = self.warming.get_mut(name) {
                *reports -= 1;
                if *reports == 0 {
                    self.warming.remove(name);
                }
            }
        }
        for mut parked in std::mem::take(&mut self.parked) {
            parked.waiting.retain(|n| self.warming.contains_key(n));
            if !parked.waiting.is_empty() {
                self.parked.push(parked);
                continue;
            }
            match parked.reply {
                ParkedReply::Ticks { all, reply } => {
                    let granted = if all {
                        (0..self.topics.len() as SymbolId)
                            .map(|id| self.grant(id))
                            .collect()
                    } else {
                        parked.ids.into_iter().map(|id| self.grant(id)).collect()
                    };
                    let _ = reply.send(Subscribed {
                        granted,
                        unknown: parked.unknown,
                    });
                }
                ParkedReply::Bars { tf, reply } => {
                    let _ = reply.send(self.bars_granted(parked.ids, tf, parked.unknown));
                }
                ParkedReply::Book { reply } => {
                    let _ = reply.send(self.book_granted(parked.ids, parked.unknown));
                }
            }
        }
    }
}
