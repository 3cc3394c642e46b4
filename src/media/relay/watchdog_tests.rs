use std::time::{Duration, Instant};

use super::watchdog::*;

const TIMEOUT: Duration = Duration::from_secs(30);

fn armed(t0: Instant) -> Watchdog {
    let mut dog = Watchdog::new(TIMEOUT, t0);
    dog.arm(t0);
    dog
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn fires_after_timeout_of_silence() {
    let t0 = Instant::now();
    let dog = armed(t0);
    assert!(!dog.is_timed_out(t0 + secs(29)));
    assert!(dog.is_timed_out(t0 + secs(30)));
}

#[test]
fn media_in_either_direction_keeps_it_quiet() {
    let t0 = Instant::now();
    let mut dog = armed(t0);
    for s in (0..120).step_by(20) {
        dog.on_media(t0 + secs(s));
        assert!(!dog.is_timed_out(t0 + secs(s + 29)));
    }
    assert!(dog.is_timed_out(t0 + secs(100 + 30)));
}

#[test]
fn does_not_run_before_both_legs_have_sdp() {
    let t0 = Instant::now();
    let mut dog = Watchdog::new(TIMEOUT, t0);
    assert!(!dog.is_timed_out(t0 + secs(300)), "ringing is not silence");
    dog.arm(t0 + secs(300));
    assert!(!dog.is_timed_out(t0 + secs(310)));
    assert!(dog.is_timed_out(t0 + secs(330)));
}

#[test]
fn new_sdp_restarts_the_clock() {
    let t0 = Instant::now();
    let mut dog = armed(t0);
    dog.arm(t0 + secs(25));
    assert!(!dog.is_timed_out(t0 + secs(40)));
}

#[test]
fn paused_while_on_hold_and_restarted_after() {
    let t0 = Instant::now();
    let mut dog = armed(t0);
    dog.set_enabled(false, t0 + secs(10));
    assert!(!dog.is_timed_out(t0 + secs(600)));
    dog.set_enabled(true, t0 + secs(600));
    assert!(!dog.is_timed_out(t0 + secs(620)));
    assert!(dog.is_timed_out(t0 + secs(630)));
}

#[test]
fn re_enabling_while_enabled_keeps_the_clock() {
    let t0 = Instant::now();
    let mut dog = armed(t0);
    dog.set_enabled(true, t0 + secs(20));
    assert!(dog.is_timed_out(t0 + secs(30)));
}

#[test]
fn out_of_order_times_do_not_rewind() {
    let t0 = Instant::now();
    let mut dog = armed(t0);
    dog.on_media(t0 + secs(20));
    dog.on_media(t0 + secs(5));
    assert!(!dog.is_timed_out(t0 + secs(45)));
}

#[test]
fn check_period_scales_with_timeout() {
    let t0 = Instant::now();
    assert_eq!(Watchdog::new(secs(60), t0).check_period(), secs(1));
    assert_eq!(Watchdog::new(Duration::from_millis(200), t0).check_period(), Duration::from_millis(50));
}
