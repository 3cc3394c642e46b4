use super::*;

fn refused(code: u16) -> Outcome {
    Outcome::Refused { code, reason: "Forbidden".into(), min_expires: None }
}

#[test]
fn registers_at_once_and_only_once_until_the_outcome() {
    let mut m = RegMachine::new(3600, 1_000);
    assert_eq!(m.poll(999), None);
    assert_eq!(m.poll(1_000), Some(3600));
    assert_eq!(m.poll(50_000), None, "a REGISTER is out");
    assert_eq!(m.next_wake(), None);
    assert_eq!(m.status(1_000).state, "registering");
}

#[test]
fn refreshes_before_the_granted_expiry() {
    let mut m = RegMachine::new(3600, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Registered { granted_secs: 600 });
    assert_eq!(m.next_wake(), Some(540_000), "a minute before 600 s run out");
    let s = m.status(10_000);
    assert_eq!((s.state, s.expires_in, s.last_error), ("registered", Some(590), None));
    assert_eq!(m.poll(539_999), None);
    assert_eq!(m.poll(540_000), Some(3600));
    // short lifetimes refresh at half
    m.on_outcome(540_000, Outcome::Registered { granted_secs: 10 });
    assert_eq!(m.next_wake(), Some(545_000));
}

#[test]
fn a_wrong_password_backs_off_instead_of_looping() {
    let mut m = RegMachine::new(3600, 0);
    let mut sent = vec![];
    let mut now = 0;
    while now < 3_600_000 {
        if m.poll(now).is_some() {
            sent.push(now);
            m.on_outcome(now, refused(403));
        }
        now = m.next_wake().expect("due again");
    }
    assert_eq!(&sent[..5], &[0, 30_000, 90_000, 210_000, 450_000]);
    assert!(sent.windows(2).all(|w| w[1] - w[0] <= 600_000), "never more than 10 minutes apart");
    assert!(sent.len() < 12, "{} REGISTERs in an hour", sent.len());
    let s = m.status(now);
    assert_eq!(s.state, "failed");
    assert_eq!(s.last_error.as_deref(), Some("403 Forbidden"));
}

#[test]
fn success_clears_the_error_and_the_back_off() {
    let mut m = RegMachine::new(60, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Failed("no answer (timeout)".into()));
    assert_eq!(m.status(0).state, "failed");
    assert_eq!(m.poll(30_000), Some(60));
    m.on_outcome(30_000, Outcome::Registered { granted_secs: 60 });
    let s = m.status(30_000);
    assert_eq!((s.state, s.failures, s.last_error), ("registered", 0, None));
    assert_eq!(m.poll(60_000), Some(60));
    m.on_outcome(60_000, refused(500));
    assert_eq!(m.status(60_000).failures, 1, "the back-off starts over");
}

#[test]
fn a_failed_refresh_retries_before_the_registration_runs_out() {
    let mut m = RegMachine::new(60, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Registered { granted_secs: 40 });
    assert_eq!(m.poll(20_000), Some(60));
    m.on_outcome(20_000, Outcome::Failed("timeout".into()));
    assert_eq!(m.next_wake(), Some(30_000), "half of the 20 s left, not 30 s");
    assert_eq!(m.status(20_000).state, "registered", "still registered until it runs out");
    assert_eq!(m.status(40_000).state, "failed");
}

#[test]
fn interval_too_brief_asks_again_with_min_expires_once() {
    let mut m = RegMachine::new(30, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Refused { code: 423, reason: "Interval Too Brief".into(), min_expires: Some(120) });
    assert_eq!(m.poll(0), Some(120));
    m.on_outcome(0, Outcome::Refused { code: 423, reason: "Interval Too Brief".into(), min_expires: Some(240) });
    assert_eq!(m.poll(0), None, "a second 423 backs off");
    assert_eq!(m.next_wake(), Some(30_000));
    // an absurd Min-Expires is not followed
    let mut m = RegMachine::new(30, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Refused { code: 423, reason: "x".into(), min_expires: Some(u32::MAX) });
    assert_eq!(m.poll(0), None);
}

#[test]
fn restart_registers_now_but_not_twice() {
    let mut m = RegMachine::new(60, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Registered { granted_secs: 3600 });
    m.restart(5_000);
    assert_eq!(m.poll(5_000), Some(60));
    m.restart(6_000);
    assert_eq!(m.poll(6_000), None, "one REGISTER out at a time");
}

#[test]
fn stopping_unregisters_only_what_the_provider_may_hold() {
    // registered: un-REGISTER, then nothing more
    let mut m = RegMachine::new(3600, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Registered { granted_secs: 600 });
    assert!(m.stop(1_000));
    assert_eq!((m.poll(10_000_000), m.next_wake()), (None, None));
    m.restart(2_000);
    m.on_outcome(2_000, Outcome::Registered { granted_secs: 600 });
    assert_eq!((m.poll(10_000_000), m.is_registered(2_000)), (None, false), "the un-REGISTER's outcome changes nothing");
    // a REGISTER out: the provider may have taken it
    let mut m = RegMachine::new(3600, 0);
    m.poll(0);
    assert!(m.stop(1_000));
    // never registered, or expired: nothing to take back
    let mut m = RegMachine::new(3600, 0);
    m.poll(0);
    m.on_outcome(0, refused(403));
    assert!(!m.stop(1_000));
    let mut m = RegMachine::new(3600, 0);
    m.poll(0);
    m.on_outcome(0, Outcome::Registered { granted_secs: 60 });
    assert!(!m.stop(61_000));
}
