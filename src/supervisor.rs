//! Watches every long-lived task of a node (HTTP server, MQTT poller, batcher, writers, live
//! feed, maintenance). A task that ends before shutdown was asked for, or panics at any time,
//! is logged by name, starts the one shutdown path (so ingest drains what it can), and makes
//! the node's run end in an error: the process exits non-zero and whatever supervises it
//! (systemd, Kubernetes, compose `restart:`) restarts a whole node, instead of one that keeps
//! answering HTTP without its ingest or its live index.

use std::any::Any;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::{JoinError, JoinHandle};
use tokio_util::task::AbortOnDropHandle;

use crate::shutdown::Shutdown;

#[derive(Clone)]
pub struct Supervisor {
    shutdown: Shutdown,
    /// How each failed task ended, in the order they were noticed.
    failures: Arc<Mutex<Vec<String>>>,
}

impl Supervisor {
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            failures: Arc::default(),
        }
    }

    pub fn spawn(
        &self,
        task: &'static str,
        future: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        self.watch(task, tokio::spawn(future))
    }

    /// Watches an already spawned task. The returned handle ends when the task does, and
    /// aborting it aborts the task, so owners keep draining and aborting it as before.
    pub fn watch(&self, task: &'static str, handle: JoinHandle<()>) -> JoinHandle<()> {
        let this = self.clone();
        // Wrapped here, not inside the future: an abort before its first poll must reach it too.
        let handle = AbortOnDropHandle::new(handle);
        tokio::spawn(async move {
            let ended = handle.await;
            this.ended(task, ended);
        })
    }

    fn ended(&self, task: &'static str, result: Result<(), JoinError>) {
        let stopping = self.shutdown.is_triggered();
        let how = match result {
            Ok(()) if stopping => return tracing::debug!(task, "task stopped"),
            Ok(()) => "returned before shutdown was requested".to_owned(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_message(&e.into_panic())),
            // The drain deadline aborted it; the drain has said so.
            Err(_) if stopping => return,
            Err(_) => "was cancelled before shutdown was requested".to_owned(),
        };
        self.failed(task, how);
    }

    /// Records that `task` failed (`how`, e.g. "failed: address in use") and starts the
    /// shutdown; for a task that reports its own error instead of panicking.
    pub fn failed(&self, task: &'static str, how: String) {
        tracing::error!(task, how, "background task failed; shutting down");
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.push(format!("{task} {how}"));
        self.shutdown.trigger();
    }

    /// How the node ended: an error naming every task that failed, if any did.
    pub fn outcome(&self) -> anyhow::Result<()> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.is_empty() {
            return Ok(());
        }
        anyhow::bail!("stopped because {}", failures.join("; "))
    }
}

fn panic_message(payload: &Box<dyn Any + Send>) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(not a string)"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    fn supervisor() -> (Supervisor, Shutdown) {
        let shutdown = Shutdown::default();
        (Supervisor::new(shutdown.clone()), shutdown)
    }

    #[tokio::test]
    async fn tasks_that_stop_on_shutdown_end_cleanly() {
        let (supervisor, shutdown) = supervisor();
        let stop = shutdown.clone();
        let task = supervisor.spawn("maintenance", async move { stop.triggered().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!task.is_finished());
        shutdown.trigger();
        task.await.unwrap();
        assert!(supervisor.outcome().is_ok());
    }

    #[tokio::test]
    async fn a_task_returning_early_starts_the_shutdown_and_fails_the_run() {
        let (supervisor, shutdown) = supervisor();
        supervisor.spawn("batcher", async {}).await.unwrap();
        assert!(shutdown.is_triggered());
        let error = supervisor.outcome().unwrap_err().to_string();
        assert!(
            error.contains("batcher returned before shutdown"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_task_reporting_its_own_error_fails_the_run() {
        let (supervisor, shutdown) = supervisor();
        let reporter = supervisor.clone();
        supervisor
            .spawn("http server", async move {
                reporter.failed("http server", "failed: accept".to_owned())
            })
            .await
            .unwrap();
        assert!(shutdown.is_triggered());
        assert_eq!(
            supervisor.outcome().unwrap_err().to_string(),
            "stopped because http server failed: accept"
        );
    }

    #[tokio::test]
    async fn a_panic_is_reported_as_a_panic_even_during_shutdown() {
        let (supervisor, shutdown) = supervisor();
        let stop = shutdown.clone();
        let task = supervisor.spawn("http server", async move {
            stop.triggered().await;
            panic!("listener gone");
        });
        shutdown.trigger();
        task.await.unwrap();
        let error = supervisor.outcome().unwrap_err().to_string();
        assert!(
            error.contains("http server panicked: listener gone"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_among_others_stops_them_all() {
        let (supervisor, shutdown) = supervisor();
        let stop = shutdown.clone();
        let writer = supervisor.spawn("writer", async move { stop.triggered().await });
        let feed = tokio::spawn(async { panic!("bad row {}", 7) });
        supervisor.watch("live feed", feed).await.unwrap();
        writer.await.unwrap(); // it stopped because the shutdown started
        assert_eq!(
            supervisor.outcome().unwrap_err().to_string(),
            "stopped because live feed panicked: bad row 7"
        );
    }

    #[tokio::test]
    async fn aborting_the_watching_handle_aborts_the_task() {
        let (supervisor, shutdown) = supervisor();
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let task = supervisor.spawn("writer", async move {
            let _flag = flag;
            std::future::pending::<()>().await
        });
        shutdown.trigger(); // a drain past its deadline aborts what is left
        task.abort();
        let _ = task.await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while !dropped.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the watched task was aborted too");
        assert!(supervisor.outcome().is_ok());
    }
}
