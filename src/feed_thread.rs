//! The feed thread: source and router run on a runtime of their own, on a
//! dedicated OS thread, apart from the session tasks.
//!
//! The router is the single point every update passes through. On the
//! shared multi-thread runtime it would queue behind thousands of session
//! tasks and route late exactly when load is high; on its own thread the OS
//! scheduler gives it the CPU as soon as it wakes. Session wake-ups cross
//! from this thread to the session runtime through `Notify`, which needs no
//! shared runtime.

use crate::shutdown::Shutdown;
use tokio::runtime::{Builder, Handle};

/// A running feed thread; tasks are spawned onto it with [`FeedThread::enter`].
pub(crate) struct FeedThread {
    handle: Handle,
}

impl FeedThread {
    /// Starts the thread; it runs until `shutdown` fires (or its trigger is
    /// dropped), then drops its runtime and every task still on it.
    pub(crate) fn start(mut shutdown: Shutdown) -> std::io::Result<Self> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("tickfeed-feed".into())
            .spawn(move || runtime.block_on(async move { shutdown.wait().await }))?;
        Ok(Self { handle })
    }

    /// Runs `start_tasks` with this thread's runtime as the current one, so
    /// every `tokio::spawn` inside it lands on the feed thread.
    pub(crate) fn enter<T>(&self, start_tasks: impl FnOnce() -> T) -> T {
        let _entered = self.handle.enter();
        start_tasks()
    }
}
