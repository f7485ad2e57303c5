//! `/readyz`: whether this node should get traffic. Ready once the source
//! has produced (a routed update; on a NATS edge, which routes only what
//! its clients want, once the universe is known), while the broker is
//! connected (`--nats` nodes) and until shutdown starts. Public, like
//! `/healthz`, which only says the process answers.

use crate::router::RouterHandle;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What `/readyz` looks at.
#[derive(Clone)]
pub(crate) struct Readiness {
    pub stats: Arc<Stats>,
    pub router: RouterHandle,
    pub shutdown: Shutdown,
    /// A NATS edge: ready with the universe, not with a first update.
    pub edge: bool,
}

/// Why the node is not ready; the body of the 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotReady {
    #[error("shutting down")]
    ShuttingDown,
    #[error("NATS connection lost")]
    BrokerLost,
    #[error("no symbols known yet")]
    NoUniverse,
    #[error("the source has produced nothing yet")]
    NoUpdate,
}

impl Readiness {
    pub(crate) fn check(&self) -> Result<(), NotReady> {
        if self.shutdown.is_stopping() {
            return Err(NotReady::ShuttingDown);
        }
        let broker = &self.stats.broker;
        if broker.configured() && !broker.connected() {
            return Err(NotReady::BrokerLost);
        }
        if self.edge {
            if self.router.table().is_empty() {
                return Err(NotReady::NoUniverse);
            }
        } else if self.stats.ticks_in.load(Ordering::Relaxed) == 0 {
            return Err(NotReady::NoUpdate);
        }
        Ok(())
    }
}

/// 200 `ready`, or 503 with the reason.
pub(crate) async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, String) {
    match readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(not_ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {not_ready}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Router;
    use crate::shutdown::ShutdownTrigger;
    use crate::symbols::SymbolTable;

    fn readiness(trigger: &ShutdownTrigger, edge: bool) -> Readiness {
        let stats = Arc::new(Stats::new());
        let (_source, source_rx) = crate::source::channel();
        let router = Router::new(Arc::new(SymbolTable::new(8)), stats.clone()).spawn(
            source_rx,
            trigger.subscribe(),
            trigger.guard(),
        );
        Readiness {
            stats,
            router,
            shutdown: trigger.subscribe(),
            edge,
        }
    }

    #[tokio::test]
    async fn ready_after_the_first_update_until_the_broker_is_lost_or_shutdown() {
        let mut trigger = ShutdownTrigger::new();
        let readiness = readiness(&trigger, false);
        assert_eq!(readiness.check(), Err(NotReady::NoUpdate));
        readiness.stats.ticks_in.fetch_add(1, Ordering::Relaxed);
        assert_eq!(readiness.check(), Ok(()));
        readiness.stats.broker.connected_first();
        readiness.stats.broker.lost();
        assert_eq!(readiness.check(), Err(NotReady::BrokerLost));
        readiness.stats.broker.regained();
        assert_eq!(readiness.check(), Ok(()));
        let stopping = readiness.clone();
        trigger.stop_and_wait().await;
        assert_eq!(stopping.check(), Err(NotReady::ShuttingDown));
    }

    #[tokio::test]
    async fn an_edge_is_not_ready_without_a_universe() {
        let mut trigger = ShutdownTrigger::new();
        let readiness = readiness(&trigger, true);
        readiness.stats.broker.connected_first();
        readiness.stats.ticks_in.fetch_add(1, Ordering::Relaxed);
        assert_eq!(readiness.check(), Err(NotReady::NoUniverse));
        drop(readiness);
        trigger.stop_and_wait().await;
    }
}
