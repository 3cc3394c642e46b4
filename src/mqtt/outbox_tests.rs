use super::*;

fn ev(n: usize) -> Msg {
    Msg::event("t/events".into(), format!("e{n}"))
}

fn drain(o: &mut Outbox, pkid: &mut u16) -> Vec<String> {
    let mut out = vec![];
    while let Some(m) = o.take_next() {
        *pkid += 1;
        o.written(*pkid);
        o.acked(*pkid);
        out.push(m.payload);
    }
    out
}

#[test]
fn nothing_leaves_while_disconnected_and_order_is_kept() {
    let mut o = Outbox::new(10, 4);
    o.push(ev(1));
    o.push(Msg::state("t/state".into(), "s".into()));
    assert!(o.take_next().is_none(), "not connected");
    assert_eq!(o.queued(), 1, "snapshots are not queued while away");
    o.connected(vec![Msg::state("t/status".into(), "online".into())], vec![Msg::state("t/state".into(), "s1".into())]);
    o.push(ev(2));
    let mut pkid = 0;
    assert_eq!(drain(&mut o, &mut pkid), ["online", "e1", "s1", "e2"]);
    assert!(o.is_idle());
}

#[test]
fn window_limits_unacked_messages() {
    let mut o = Outbox::new(100, 2);
    o.connected(vec![], vec![]);
    for i in 0..5 {
        o.push(ev(i));
    }
    assert!(o.take_next().is_some());
    assert!(o.take_next().is_some());
    assert!(o.take_next().is_none(), "window of 2 is full");
    o.written(1);
    o.acked(1);
    assert_eq!(o.take_next().unwrap().payload, "e2");
}

#[test]
fn unacked_events_are_resent_first_in_order_after_reconnect_and_snapshots_dropped() {
    let mut o = Outbox::new(100, 10);
    o.connected(vec![], vec![]);
    o.push(ev(1));
    o.push(Msg::state("t/s".into(), "old".into()));
    o.push(ev(2));
    o.push(ev(3));
    o.push(ev(4));
    // e1 acked, the snapshot and e2 written (no ack), e3 handed, e4 queued.
    o.take_next();
    o.written(1);
    o.acked(1);
    o.take_next();
    o.written(2);
    o.take_next();
    o.written(3);
    o.take_next();
    o.disconnected();
    o.push(ev(5));
    o.push(Msg::state("t/s".into(), "ignored".into()));
    o.connected(vec![Msg::state("t/status".into(), "online".into())], vec![Msg::state("t/s".into(), "new".into())]);
    let mut pkid = 10;
    assert_eq!(drain(&mut o, &mut pkid), ["online", "e2", "e3", "e4", "e5", "new"]);
}

#[test]
fn a_refused_message_is_given_back_to_the_front() {
    let mut o = Outbox::new(10, 10);
    o.connected(vec![], vec![]);
    o.push(ev(1));
    o.push(ev(2));
    assert_eq!(o.take_next().unwrap().payload, "e1");
    o.give_back();
    let mut pkid = 0;
    assert_eq!(drain(&mut o, &mut pkid), ["e1", "e2"]);
}

#[test]
fn bounded_queue_drops_oldest_events_and_counts_them() {
    let mut o = Outbox::new(3, 10);
    for i in 0..5 {
        o.push(ev(i));
    }
    assert_eq!(o.dropped_total(), 2);
    let dropped = o.connected(vec![], vec![]);
    assert_eq!(dropped, 2);
    let mut pkid = 0;
    assert_eq!(drain(&mut o, &mut pkid), ["e2", "e3", "e4"]);
    assert_eq!(o.connected(vec![], vec![]), 0, "counted once");
}

#[test]
fn queued_snapshots_for_one_topic_collapse_to_the_newest() {
    let mut o = Outbox::new(10, 1);
    o.connected(vec![], vec![]);
    o.push(ev(0));
    o.take_next(); // window full: the rest stays queued
    o.push(Msg::state("t/a".into(), "1".into()));
    o.push(Msg::state("t/b".into(), "x".into()));
    o.push(Msg::state("t/a".into(), "2".into()));
    o.written(1);
    o.acked(1);
    let mut pkid = 1;
    assert_eq!(drain(&mut o, &mut pkid), ["x", "2"]);
}

#[test]
fn one_thousand_events_survive_an_outage_in_order() {
    let mut o = Outbox::new(1000, 64);
    o.connected(vec![], vec![]);
    o.push(ev(0));
    o.take_next();
    o.written(1); // written, never acked: the broker died
    o.disconnected();
    for i in 1..1000 {
        o.push(ev(i));
    }
    assert_eq!(o.dropped_total(), 0);
    o.connected(vec![], vec![]);
    let mut pkid = 1;
    let got = drain(&mut o, &mut pkid);
    assert_eq!(got.len(), 1000);
    assert!(got.iter().enumerate().all(|(i, p)| *p == format!("e{i}")));
}
