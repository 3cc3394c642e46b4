//! Failover of a call out (sans-IO): a route names its `trunk` and, in
//! order, `failover` trunks. When the provider does not take the call (no
//! answer to the INVITE: 408; a server error or an unreachable server: 5xx,
//! 503 for a transport error) the call goes out on the next one. A refusal
//! of the call itself (4xx such as 404 or 486, 6xx) ends it there: another
//! provider would only say the same, or ring the callee a second time.
use std::collections::VecDeque;

/// Whether a failed INVITE at one trunk lets the call try the next.
pub fn fails_over(status: u16) -> bool {
    matches!(status, 408 | 500..=599)
}

/// The trunks a call out has left to try, and the number it dials there
/// (the route's strip and prepend apply to every trunk of the route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    rest: VecDeque<String>,
    pub number: String,
}

impl Failover {
    /// None when the route has no failover trunks.
    pub fn new(failover: &[String], number: &str) -> Option<Failover> {
        (!failover.is_empty()).then(|| Failover { rest: failover.iter().cloned().collect(), number: number.to_string() })
    }

    /// The trunk in use failed with `status`: the next trunk to try, or None
    /// (a refusal, or none left): the call ends with that failure. A refusal
    /// also drops the trunks left, so nothing is tried after it.
    pub fn on_failure(&mut self, status: u16) -> Option<String> {
        if !fails_over(status) {
            self.rest.clear();
            return None;
        }
        self.rest.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Failover {
        Failover::new(&["b".into(), "c".into()], "+49301234567").expect("trunks to fail over to")
    }

    #[test]
    fn provider_failures_go_to_the_next_trunk_in_order() {
        let mut f = plan();
        assert_eq!(f.on_failure(503).as_deref(), Some("b"));
        assert_eq!(f.on_failure(408).as_deref(), Some("c"));
        assert_eq!(f.on_failure(500), None, "none left");
        assert_eq!(f.number, "+49301234567");
        for status in [500, 502, 503, 504, 580, 408] {
            assert!(fails_over(status), "{status}");
        }
    }

    #[test]
    fn a_refusal_of_the_call_ends_it_there() {
        for status in [404, 486, 480, 403, 484, 487, 603, 600, 401, 407, 200, 0, 699] {
            let mut f = plan();
            assert_eq!(f.on_failure(status), None, "{status} must not fail over");
            assert_eq!(f.on_failure(503), None, "{status}: nothing tried after a refusal");
        }
    }

    #[test]
    fn a_route_without_failover_trunks_has_no_plan() {
        assert_eq!(Failover::new(&[], "+49301234567"), None);
    }
}
