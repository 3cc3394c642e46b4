//! Call history recorded from bus events.
use super::*;
use crate::events::{EndReason, EventBus, PbxEvent};
use crate::storage::{CallFilter, CallRecord, PageKey, spawn_call_history};
use std::time::Duration;

fn ringing(id: &str) -> PbxEvent {
    PbxEvent::Ringing {
        call_id: id.into(),
        caller: "101".into(),
        callee: "102".into(),
    }
}
fn answered(id: &str) -> PbxEvent {
    PbxEvent::Answered {
        call_id: id.into(),
        caller: "101".into(),
        callee: "102".into(),
        answered_by: "102".into(),
    }
}
fn ended(id: &str, reason: EndReason, answered: bool) -> PbxEvent {
    PbxEvent::Ended {
        call_id: id.into(),
        caller: "101".into(),
        callee: "102".into(),
        reason,
        answered,
        duration_ms: 0,
    }
}

/// Poll until `n` calls have ended (the recorder runs in its own task).
async fn ended_calls(store: &Store, n: usize) -> Vec<CallRecord> {
    for _ in 0..200 {
        let calls = store.recent_calls(100).await.unwrap();
        if calls.iter().filter(|c| c.ended_at.is_some()).count() >= n {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("calls were not recorded");
}

fn find<'a>(calls: &'a [CallRecord], id: &str) -> &'a CallRecord {
    calls.iter().find(|c| c.call_id == id).unwrap()
}

#[tokio::test]
async fn events_end_in_the_right_disposition() {
    let store = Store::open_in_memory().await.unwrap();
    let bus = EventBus::new(64);
    let task = spawn_call_history(store.clone(), &bus);

    bus.publish(ringing("a"));
    bus.publish(ringing("a")); // repeated Ringing must not fail or duplicate
    bus.publish(answered("a"));
    bus.publish(ended("a", EndReason::CallerHangup, true));

    bus.publish(ringing("m"));
    bus.publish(PbxEvent::Missed {
        call_id: "m".into(),
        caller: "101".into(),
        callee: "102".into(),
    });
    bus.publish(ended("m", EndReason::NoAnswer, false));

    bus.publish(ringing("b"));
    bus.publish(ended("b", EndReason::Busy, false));
    bus.publish(ringing("c"));
    bus.publish(ended("c", EndReason::Cancelled, false));

    let calls = ended_calls(&store, 4).await;
    assert_eq!(calls.len(), 4);

    let a = find(&calls, "a");
    assert_eq!(a.disposition.as_deref(), Some("answered"));
    assert_eq!(a.end_reason.as_deref(), Some("caller_hangup"));
    assert_eq!((a.caller.as_str(), a.callee.as_str()), ("101", "102"));
    let answered_at = a.answered_at.expect("answer time recorded");
    assert!(a.started_at <= answered_at && answered_at <= a.ended_at.unwrap());

    let m = find(&calls, "m");
    assert_eq!(m.disposition.as_deref(), Some("missed"));
    assert_eq!(m.end_reason.as_deref(), Some("no_answer"));
    assert_eq!(m.answered_at, None);
    assert_eq!(find(&calls, "b").disposition.as_deref(), Some("busy"));
    assert_eq!(find(&calls, "c").disposition.as_deref(), Some("cancelled"));

    // The recorder stops when the bus goes away.
    drop(bus);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn ended_without_ringing_still_leaves_a_row() {
    let store = Store::open_in_memory().await.unwrap();
    let bus = EventBus::new(8);
    let _task = spawn_call_history(store.clone(), &bus);
    bus.publish(ended("x", EndReason::Rejected, false));
    let calls = ended_calls(&store, 1).await;
    assert_eq!(calls[0].disposition.as_deref(), Some("rejected"));
    assert_eq!(calls[0].end_reason.as_deref(), Some("rejected"));
}

#[tokio::test]
async fn call_rows_are_idempotent_and_newest_first() {
    let store = Store::open_in_memory().await.unwrap();
    store.call_started("1", "101", "102", 100).await.unwrap();
    store.call_started("1", "101", "102", 150).await.unwrap();
    store.call_started("2", "102", "101", 200).await.unwrap();
    store.call_answered("1", 300).await.unwrap();
    store.call_answered("1", 400).await.unwrap();
    store
        .call_ended("1", 500, "answered", "callee_hangup")
        .await
        .unwrap();
    store
        .call_ended("1", 600, "failed", "failed")
        .await
        .unwrap();

    let calls = store.recent_calls(10).await.unwrap();
    let ids: Vec<_> = calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, ["2", "1"]);
    assert_eq!(
        calls[1],
        CallRecord {
            call_id: "1".into(),
            caller: "101".into(),
            callee: "102".into(),
            started_at: 100,
            answered_at: Some(300),
            ended_at: Some(500),
            disposition: Some("answered".into()),
            end_reason: Some("callee_hangup".into()),
            seq: 0,
        }
    );
    assert_eq!(store.recent_calls(1).await.unwrap().len(), 1);
}

/// A run killed mid-call leaves its rows open; the next start closes them
/// (answered ones stay answered), and closes nothing else.
#[tokio::test]
async fn calls_left_open_by_a_killed_run_are_closed_at_start() {
    let store = Store::open_in_memory().await.unwrap();
    store.call_started("talking", "101", "102", 1_000).await.unwrap();
    store.call_answered("talking", 2_000).await.unwrap();
    store.call_started("ringing", "101", "103", 3_000).await.unwrap();
    store.call_started("done", "101", "104", 500).await.unwrap();
    store.call_ended("done", 900, "missed", "no_answer").await.unwrap();
    assert_eq!(store.close_open_calls(9_000).await.unwrap(), 2);
    let calls = store.recent_calls(10).await.unwrap();
    let row = |id| {
        let c = find(&calls, id);
        (c.ended_at, c.disposition.clone(), c.end_reason.clone())
    };
    assert_eq!(row("talking"), (Some(9_000), Some("answered".into()), Some("pbx_stopped".into())));
    assert_eq!(row("ringing"), (Some(9_000), Some("failed".into()), Some("pbx_stopped".into())));
    assert_eq!(row("done"), (Some(900), Some("missed".into()), Some("no_answer".into())));
    assert_eq!(store.close_open_calls(10_000).await.unwrap(), 0);
}

#[tokio::test]
async fn history_pages_newest_first() {
    let store = Store::open_in_memory().await.unwrap();
    for i in 0..5i64 {
        store.call_started(&format!("c{i}"), "101", "102", 1000 + i).await.unwrap();
    }
    let first: Vec<String> = store.calls_before(None, 2).await.unwrap().into_iter().map(|c| c.call_id).collect();
    assert_eq!(first, ["c4", "c3"]);
    let next: Vec<String> = store.calls_before(Some(1003), 2).await.unwrap().into_iter().map(|c| c.call_id).collect();
    assert_eq!(next, ["c2", "c1"]);
    assert!(store.calls_before(Some(1000), 2).await.unwrap().is_empty());
}

/// Calls that start in the same millisecond (a group ringing, a burst) are
/// paged by (start, row): every page boundary, among them or not, neither
/// skips nor repeats a call, with and without a filter.
#[tokio::test]
async fn history_pages_through_calls_of_the_same_millisecond_once_each() {
    let store = Store::open_in_memory().await.unwrap();
    // 7 calls at 5000 ms, 2 before and 2 after, inserted out of time order
    for (i, at) in [5000, 4000, 5000, 5000, 6000, 5000, 5000, 3000, 5000, 5000, 7000].iter().enumerate() {
        let id = format!("c{i}");
        store.call_started(&id, if i % 2 == 0 { "101" } else { "102" }, "103", *at).await.unwrap();
    }
    let all = store.calls_page(&CallFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.len(), 11);
    assert!(all.windows(2).all(|w| (w[0].started_at, w[0].seq) > (w[1].started_at, w[1].seq)), "newest first, then by row");
    for size in 1..=4 {
        for filter in [CallFilter::default(), CallFilter { number: Some("101".into()), disposition: None }] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store.calls_page(&filter, after, size).await.unwrap();
                seen.extend(page.iter().map(|c| c.call_id.clone()));
                if (page.len() as i64) < size {
                    break;
                }
                after = Some(PageKey::after(page.last().unwrap()));
                // the key goes through the API as text
                after = PageKey::parse(&after.unwrap().to_string());
            }
            let expect: Vec<String> = all.iter().filter(|c| filter.number.as_ref().is_none_or(|n| &c.caller == n)).map(|c| c.call_id.clone()).collect();
            assert_eq!(seen, expect, "page size {size}, filter {filter:?}");
        }
    }
    // the old form, a bare millisecond, still means "started before it"
    let before = store.calls_page(&CallFilter::default(), PageKey::parse("5000"), 100).await.unwrap();
    assert_eq!(before.iter().map(|c| c.started_at).collect::<Vec<_>>(), [4000, 3000]);
}

#[tokio::test]
async fn history_filters_by_number_and_by_how_it_ended_still_paged() {
    let store = Store::open_in_memory().await.unwrap();
    let calls = [("a", "101", "102", "answered"), ("b", "103", "101", "missed"), ("c", "103", "104", "answered"), ("d", "102", "103", "busy"), ("e", "101", "104", "answered")];
    for (i, (id, from, to, how)) in calls.iter().enumerate() {
        store.call_started(id, from, to, 1000 + i as i64).await.unwrap();
        store.call_ended(id, 2000 + i as i64, how, "caller_hangup").await.unwrap();
    }
    store.call_started("open", "101", "105", 3000).await.unwrap(); // still ringing: no disposition
    let ids = |rows: Vec<CallRecord>| rows.into_iter().map(|c| c.call_id).collect::<Vec<_>>();
    let by = |number: Option<&str>, how: Option<&str>| CallFilter { number: number.map(Into::into), disposition: how.map(Into::into) };
    // caller or callee
    assert_eq!(ids(store.calls_page(&by(Some("101"), None), None, 10).await.unwrap()), ["open", "e", "b", "a"]);
    assert_eq!(ids(store.calls_page(&by(None, Some("answered")), None, 10).await.unwrap()), ["e", "c", "a"]);
    assert_eq!(ids(store.calls_page(&by(Some("101"), Some("answered")), None, 10).await.unwrap()), ["e", "a"]);
    // paged: the next page starts before the last one shown
    assert_eq!(ids(store.calls_page(&by(Some("101"), None), None, 2).await.unwrap()), ["open", "e"]);
    assert_eq!(ids(store.calls_page(&by(Some("101"), None), PageKey::parse("1004"), 2).await.unwrap()), ["b", "a"]);
    // exact numbers, not a prefix or a pattern
    assert!(store.calls_page(&by(Some("10"), None), None, 10).await.unwrap().is_empty());
    assert!(store.calls_page(&by(Some("10%"), None), None, 10).await.unwrap().is_empty());
    assert!(store.calls_page(&by(Some("' OR 1=1 --"), None), None, 10).await.unwrap().is_empty());
    assert_eq!(ids(store.calls_page(&CallFilter::default(), None, 10).await.unwrap()).len(), 6);
}

#[test]
fn every_stored_disposition_is_one_the_filter_accepts() {
    use crate::storage::{DISPOSITIONS, disposition};
    let reasons = [
        EndReason::NoAnswer, EndReason::Unavailable, EndReason::Busy, EndReason::Rejected, EndReason::CalleeHangup, EndReason::Cancelled,
        EndReason::CallerHangup, EndReason::Terminated, EndReason::Transferred, EndReason::NotFound, EndReason::MediaTimeout, EndReason::Failed,
    ];
    for r in reasons {
        for answered in [true, false] {
            assert!(DISPOSITIONS.contains(&disposition(answered, r)), "{r:?} {answered}");
        }
    }
}

/// A parked (or transferred) call's row gets its final end: the park's
/// `transferred` is not the last word, and the call stays answered.
#[tokio::test]
async fn a_call_that_went_on_after_a_park_records_its_final_end() {
    let store = Store::open_in_memory().await.unwrap();
    store.call_started("p", "101", "102", 100).await.unwrap();
    store.call_answered("p", 200).await.unwrap();
    store.call_ended("p", 300, "answered", "transferred").await.unwrap();
    store.call_ended("p", 900, "missed", "no_answer").await.unwrap();
    store.call_ended("p", 950, "failed", "failed").await.unwrap();
    let c = store.recent_calls(1).await.unwrap().remove(0);
    assert_eq!((c.ended_at, c.disposition.as_deref(), c.end_reason.as_deref()), (Some(900), Some("answered"), Some("no_answer")));
}
