//! Background writer for registrar bindings.
//!
//! The registrar may see thousands of REGISTERs a second and must never wait
//! on disk, so it hands ops to this task, which commits them in batches: one
//! transaction per ~20 ms or per 500 ops, whichever comes first.
use super::{BindingOp, Store};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, timeout_at};

const BATCH_MAX: usize = 500;
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Gives a transient lock or I/O error a moment to clear before the retry.
const RETRY_DELAY: Duration = Duration::from_millis(50);

enum Msg {
    Op(BindingOp),
    Flush(oneshot::Sender<()>),
}

/// Sending half of the writer; clones share the one task.
#[derive(Clone)]
pub struct BindingWriter {
    tx: mpsc::UnboundedSender<Msg>,
    done: watch::Receiver<bool>,
}

/// Start the writer task. It exits, after committing what is left, once
/// every `BindingWriter` clone has been dropped.
pub fn spawn_binding_writer(store: Store) -> BindingWriter {
    let (tx, rx) = mpsc::unbounded_channel();
    let (done_tx, done) = watch::channel(false);
    tokio::spawn(async move {
        run(store, rx).await;
        let _ = done_tx.send(true);
    });
    BindingWriter { tx, done }
}

impl BindingWriter {
    /// Queue an op; never blocks.
    pub fn send(&self, op: BindingOp) {
        if self.tx.send(Msg::Op(op)).is_err() {
            tracing::warn!("binding writer has stopped; binding op dropped");
        }
    }

    /// Resolve once every op sent before this call is committed (or, if the
    /// database refused it twice, given up on).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Drop this handle and wait for the task to commit the remainder and
    /// exit, which happens once the other clones are gone too. Lets the app
    /// shut down without losing the last registrations.
    pub async fn shutdown(self) {
        let BindingWriter { tx, mut done } = self;
        drop(tx);
        let _ = done.wait_for(|finished| *finished).await;
    }
}

#[derive(Default)]
struct Batch {
    ops: Vec<BindingOp>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Batch {
    /// Move received messages in; true if a flush asked to commit now.
    fn take(&mut self, msgs: &mut Vec<Msg>) -> bool {
        let mut flush = false;
        for msg in msgs.drain(..) {
            match msg {
                Msg::Op(op) => self.ops.push(op),
                Msg::Flush(waiter) => {
                    self.waiters.push(waiter);
                    flush = true;
                }
            }
        }
        flush
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch = Batch::default();
    let mut msgs = Vec::with_capacity(BATCH_MAX);
    // Idle until the first message of a batch; 0 means closed and drained.
    while rx.recv_many(&mut msgs, BATCH_MAX).await > 0 {
        let deadline = Instant::now() + BATCH_WINDOW;
        let mut open = true;
        loop {
            if batch.take(&mut msgs) || batch.ops.len() >= BATCH_MAX {
                break;
            }
            match timeout_at(
                deadline,
                rx.recv_many(&mut msgs, BATCH_MAX - batch.ops.len()),
            )
            .await
            {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(_) => {}
                Err(_elapsed) => break,
            }
        }
        commit(&store, &mut batch).await;
        if !open {
            break;
        }
    }
}

async fn commit(store: &Store, batch: &mut Batch) {
    if !batch.ops.is_empty() {
        if let Err(e) = store.apply_binding_ops(&batch.ops).await {
            tracing::warn!(error = %format!("{e:#}"), ops = batch.ops.len(), "binding batch failed, retrying");
            sleep(RETRY_DELAY).await;
            if let Err(e) = store.apply_binding_ops(&batch.ops).await {
                tracing::error!(error = %format!("{e:#}"), ops = batch.ops.len(), "binding batch dropped");
            }
        }
        batch.ops.clear();
    }
    for waiter in batch.waiters.drain(..) {
        let _ = waiter.send(());
    }
}
