//! The router's side door: the cheap handle sessions and the HTTP API hold,
//! and the commands it queues to the router task (subscribe, unsubscribe,
//! leave, and those of bars and books), each answered on a oneshot channel.

use super::{BarsSubscribed, BookSubscribed, ClientId, Subscribed};
use crate::bars::BarStore;
use crate::books::BookStore;
use crate::conflate::Mailbox;
use crate::protocol::{SymbolSet, Timeframe};
use crate::symbols::{SymbolId, SymbolTable};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What a session asks of the router task.
#[derive(Debug)]
pub(super) enum Command {
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
    SubscribeBars {
        client: ClientId,
        mailbox: Arc<Mailbox>,
        tf: Timeframe,
        symbols: Vec<String>,
        reply: oneshot::Sender<BarsSubscribed>,
    },
    UnsubscribeBars {
        client: ClientId,
        tf: Timeframe,
        symbols: Vec<String>,
        reply: oneshot::Sender<Vec<SymbolId>>,
    },
    SubscribeBook {
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: Vec<String>,
        reply: oneshot::Sender<BookSubscribed>,
    },
    UnsubscribeBook {
        client: ClientId,
        symbols: Vec<String>,
        reply: oneshot::Sender<Vec<SymbolId>>,
    },
    Leave {
        client: ClientId,
    },
}

/// The router has stopped (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("router stopped")]
pub struct RouterGone;

/// Cheap-to-clone handle sessions use to reach the router.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) table: Arc<SymbolTable>,
    pub(super) bars: Arc<BarStore>,
    pub(super) books: Arc<BookStore>,
}

impl RouterHandle {
    pub fn table(&self) -> &Arc<SymbolTable> {
        &self.table
    }

    /// Every symbol's bars, as the router builds them.
    pub fn bars(&self) -> &Arc<BarStore> {
        &self.bars
    }

    /// Every symbol's latest book, as the router numbers them.
    pub fn books(&self) -> &Arc<BookStore> {
        &self.books
    }

    /// Registers `mailbox` for `symbols` and returns the grants with their
    /// latest ticks, atomically with respect to routing.
    pub async fn subscribe(
        &self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: SymbolSet,
    ) -> Result<Subscribed, RouterGone> {
        self.ask(|reply| Command::Subscribe {
            client,
            mailbox,
            symbols,
            reply,
        })
        .await
    }

    /// Removes `symbols` (or everything, for `All`); returns the ids removed.
    pub async fn unsubscribe(
        &self,
        client: ClientId,
        symbols: SymbolSet,
    ) -> Result<Vec<SymbolId>, RouterGone> {
        self.ask(|reply| Command::Unsubscribe {
            client,
            symbols,
            reply,
        })
        .await
    }

    /// Registers `mailbox` for the bars of `symbols` in `tf`; returns each
    /// granted symbol with the index of the first final bar it will get.
    /// The mailbox's bar bits must be made first (`Mailbox::enable_bars`).
    pub async fn subscribe_bars(
        &self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        tf: Timeframe,
        symbols: Vec<String>,
    ) -> Result<BarsSubscribed, RouterGone> {
        self.ask(|reply| Command::SubscribeBars {
            client,
            mailbox,
            tf,
            symbols,
            reply,
        })
        .await
    }

    /// Removes the bars of `symbols` in `tf`; returns the ids of those
    /// that exist.
    pub async fn unsubscribe_bars(
        &self,
        client: ClientId,
        tf: Timeframe,
        symbols: Vec<String>,
    ) -> Result<Vec<SymbolId>, RouterGone> {
        self.ask(|reply| Command::UnsubscribeBars {
            client,
            tf,
            symbols,
            reply,
        })
        .await
    }

    /// Registers `mailbox` for the books of `symbols`; returns each granted
    /// symbol with its latest book. The mailbox's book bits must be made
    /// first (`Mailbox::enable_books`).
    pub async fn subscribe_book(
        &self,
        client: ClientId,
        mailbox: Arc<Mailbox>,
        symbols: Vec<String>,
    ) -> Result<BookSubscribed, RouterGone> {
        self.ask(|reply| Command::SubscribeBook {
            client,
            mailbox,
            symbols,
            reply,
        })
        .await
    }

    /// Removes the books of `symbols`; returns the ids of those that exist.
    pub async fn unsubscribe_book(
        &self,
        client: ClientId,
        symbols: Vec<String>,
    ) -> Result<Vec<SymbolId>, RouterGone> {
        self.ask(|reply| Command::UnsubscribeBook {
            client,
            symbols,
            reply,
        })
        .await
    }

    /// Sends the command `make` builds around a reply channel, and waits
    /// for the router's answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RouterGone> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
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
