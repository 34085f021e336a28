//! One small type every long-running loop holds to learn that the process
//! is stopping (mini-redis style): SIGTERM, Ctrl-C, or the program deciding
//! it is done (`--exit-when-idle`).

use tokio::sync::watch;

/// A clonable view of "are we stopping?".
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The handle that starts the shutdown.
#[derive(Clone)]
pub struct ShutdownTrigger {
    sender: std::sync::Arc<watch::Sender<bool>>,
}

impl ShutdownTrigger {
    /// Starts the shutdown; every [`Shutdown::wait`] returns.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    /// A new shutdown flag and its trigger.
    pub fn new() -> (Shutdown, ShutdownTrigger) {
        let (sender, receiver) = watch::channel(false);
        (Shutdown { receiver }, ShutdownTrigger { sender: std::sync::Arc::new(sender) })
    }

    /// A flag that triggers itself on SIGTERM or Ctrl-C (SIGINT). Both
    /// handlers are installed before this returns, so from then on neither
    /// signal kills the process with its default action. Must be called
    /// inside the tokio runtime.
    pub fn on_signals() -> (Shutdown, ShutdownTrigger) {
        use tokio::signal::unix::{signal, SignalKind};
        let (shutdown, trigger) = Shutdown::new();
        let on_signal = trigger.clone();
        let streams = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        let (mut term, mut interrupt) = match streams {
            (Ok(term), Ok(interrupt)) => (term, interrupt),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("cannot listen for SIGTERM/SIGINT: {e}");
                return (shutdown, trigger);
            }
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = interrupt.recv() => tracing::info!("Ctrl-C: shutting down"),
            }
            on_signal.trigger();
        });
        (shutdown, trigger)
    }

    /// True once the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Returns when the shutdown starts (at once if it already has).
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|stopping| *stopping).await;
    }

    /// Sleeps for `duration` unless the shutdown starts first; returns true
    /// if it did.
    pub async fn sleep(&mut self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.is_triggered(),
            _ = self.wait() => true,
        }
    }
}
