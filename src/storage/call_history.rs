//! Records call events from the bus into the calls table.
use super::Store;
use crate::events::{EndReason, EventBus, PbxEvent};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Subscribe now (so no event published after this call is missed) and
/// record calls until the bus closes.
pub fn spawn_call_history(store: Store, bus: &EventBus) -> JoinHandle<()> {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if let Err(e) = record(&store, event).await {
                        tracing::warn!(error = %format!("{e:#}"), "call history write failed");
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "call history lagged; {n} events were not recorded"
                    );
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

async fn record(store: &Store, event: PbxEvent) -> anyhow::Result<()> {
    let now = now_ms();
    match event {
        PbxEvent::Ringing {
            call_id,
            caller,
            callee,
        } => {
            store.call_started(&call_id, &caller, &callee, now).await?;
        }
        PbxEvent::Answered {
            call_id,
            caller,
            callee,
            ..
        } => {
            // Insert-or-ignore first so a lagged-away Ringing still leaves a row.
            store.call_started(&call_id, &caller, &callee, now).await?;
            store.call_answered(&call_id, now).await?;
        }
        PbxEvent::Ended {
            call_id,
            caller,
            callee,
            reason,
            answered,
            ..
        } => {
            store.call_started(&call_id, &caller, &callee, now).await?;
            store
                .call_ended(
                    &call_id,
                    now,
                    disposition(answered, reason),
                    &reason_name(reason),
                )
                .await?;
        }
        // Missed is implied by the Ended that accompanies it.
        _ => {}
    }
    Ok(())
}

/// How a call ended, as stored: `answered`, or why it never was.
pub fn disposition(answered: bool, reason: EndReason) -> &'static str {
    if answered {
        return "answered";
    }
    match reason {
        // The callee exists but nobody picked up (or no device was online).
        EndReason::NoAnswer | EndReason::Unavailable => "missed",
        EndReason::Busy => "busy",
        // A callee hanging up while it rings is a decline.
        EndReason::Rejected | EndReason::CalleeHangup => "rejected",
        EndReason::Cancelled | EndReason::CallerHangup | EndReason::Terminated | EndReason::Transferred => "cancelled",
        EndReason::NotFound | EndReason::MediaTimeout | EndReason::Failed => "failed",
    }
}

/// The snake_case name the event serializes to, e.g. `no_answer`.
fn reason_name(reason: EndReason) -> String {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{reason:?}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_snake_case() {
        assert_eq!(reason_name(EndReason::NoAnswer), "no_answer");
        assert_eq!(reason_name(EndReason::CallerHangup), "caller_hangup");
    }

    #[test]
    fn answered_wins_over_reason() {
        assert_eq!(disposition(true, EndReason::CallerHangup), "answered");
        assert_eq!(disposition(false, EndReason::NoAnswer), "missed");
        assert_eq!(disposition(false, EndReason::Busy), "busy");
        assert_eq!(disposition(false, EndReason::Cancelled), "cancelled");
        assert_eq!(disposition(false, EndReason::Rejected), "rejected");
        assert_eq!(disposition(false, EndReason::NotFound), "failed");
    }
}
