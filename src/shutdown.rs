//! The one shutdown design. A [`ShutdownTrigger`] says "stop" to every
//! task holding a [`Shutdown`] (a watch channel); each long-lived task also
//! holds a [`DoneGuard`], and when the last guard is dropped the trigger's
//! `wait_done` returns: "all done". SIGINT and SIGTERM both pull the trigger
//! (see `main.rs`).

use tokio::sync::{mpsc, watch};

/// Pulls the stop signal and waits for every task to finish.
#[derive(Debug)]
pub struct ShutdownTrigger {
    stop: watch::Sender<bool>,
    done_tx: Option<mpsc::Sender<()>>,
    done_rx: mpsc::Receiver<()>,
}

/// A task's view of the stop signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    stop: watch::Receiver<bool>,
}

/// Held by a running task; dropping the last one means "all done".
#[derive(Debug, Clone)]
pub struct DoneGuard {
    _done: mpsc::Sender<()>,
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownTrigger {
    pub fn new() -> Self {
        let (stop, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        Self {
            stop,
            done_tx: Some(done_tx),
            done_rx,
        }
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            stop: self.stop.subscribe(),
        }
    }

    /// A guard for a new task. Panics after `stop_and_wait` started.
    pub fn guard(&self) -> DoneGuard {
        DoneGuard {
            _done: self.done_tx.clone().expect("guard taken after shutdown"),
        }
    }

    /// Says "stop" and waits until every guard is dropped.
    pub async fn stop_and_wait(&mut self) {
        let _ = self.stop.send(true);
        self.done_tx = None;
        let _ = self.done_rx.recv().await;
    }
}

impl Shutdown {
    /// Resolves once stop was signalled (at once if it already was).
    pub async fn wait(&mut self) {
        let _ = self.stop.wait_for(|stop| *stop).await;
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_wakes_tasks_and_waits_for_their_guards() {
        let mut trigger = ShutdownTrigger::new();
        let mut shutdown = trigger.subscribe();
        let guard = trigger.guard();
        let task = tokio::spawn(async move {
            shutdown.wait().await;
            drop(guard);
        });
        trigger.stop_and_wait().await;
        task.await.unwrap();
        assert!(trigger.subscribe().is_stopping());
    }
}
