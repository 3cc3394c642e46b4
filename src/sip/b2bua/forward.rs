//! Where a call to an extension goes (sans-IO): do-not-disturb and the
//! extension's forwards decide before anything rings. Forwards are followed
//! from one extension to the next (up to `MAX_HOPS`); a loop stops at the
//! number where it closes, which then rings without forwarding further.
use crate::config::ForwardConfig;
use std::time::Duration;

pub const MAX_HOPS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Ring the number; `no_answer` takes the call after that long (or at
    /// once when no device is registered), `busy` when every device refuses.
    Ring { no_answer: Option<(Duration, String)>, busy: Option<String> },
    /// 486 Busy Here (do not disturb, no busy forward).
    Busy,
}

impl Route {
    pub fn plain(&self) -> bool {
        matches!(self, Route::Ring { no_answer: None, busy: None })
    }
}

enum Step {
    Route(Route),
    Forward(String),
}

fn step(forward: &ForwardConfig, dnd: bool) -> Step {
    if dnd {
        return forward.busy.clone().map_or(Step::Route(Route::Busy), Step::Forward);
    }
    if let Some(t) = &forward.always {
        return Step::Forward(t.clone());
    }
    let no_answer = forward.no_answer.clone().map(|t| (Duration::from_secs(forward.no_answer_secs), t));
    Step::Route(Route::Ring { no_answer, busy: forward.busy.clone() })
}

/// The number the call ends up at, how it is rung there, and the extension
/// whose forward sent it there (None: not forwarded); a number outside is
/// called as if that extension had dialled it. `settings` gives a number's
/// forwards and DND (None: not an extension with any, e.g. a group, the
/// agent or a number outside).
pub fn resolve(callee: &str, settings: impl Fn(&str) -> Option<(ForwardConfig, bool)>) -> (String, Route, Option<String>) {
    let mut at = callee.to_string();
    let mut by = None;
    let mut seen = vec![at.clone()];
    loop {
        let Some((forward, dnd)) = settings(&at) else {
            return (at, Route::Ring { no_answer: None, busy: None }, by);
        };
        match step(&forward, dnd) {
            Step::Route(r) => return (at, r, by),
            Step::Forward(next) if !seen.contains(&next) && seen.len() <= MAX_HOPS => {
                seen.push(next.clone());
                by = Some(std::mem::replace(&mut at, next));
            }
            // A loop (or too long a chain): ring here as if nothing forwarded.
            Step::Forward(_) => return (at, Route::Ring { no_answer: None, busy: None }, by),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fwd(always: Option<&str>, busy: Option<&str>, no_answer: Option<&str>) -> ForwardConfig {
        ForwardConfig { always: always.map(Into::into), busy: busy.map(Into::into), no_answer: no_answer.map(Into::into), no_answer_secs: 20 }
    }

    fn table(rows: &[(&str, ForwardConfig, bool)]) -> impl Fn(&str) -> Option<(ForwardConfig, bool)> {
        let m: HashMap<String, (ForwardConfig, bool)> = rows.iter().map(|(k, f, d)| (k.to_string(), (f.clone(), *d))).collect();
        move |n: &str| m.get(n).cloned()
    }

    #[test]
    fn no_forward_rings_the_callee() {
        let (at, r, _) = resolve("102", table(&[("102", ForwardConfig::default(), false)]));
        assert_eq!(at, "102");
        assert!(r.plain());
        assert!(resolve("600", table(&[])).1.plain());
    }

    #[test]
    fn dnd_is_busy_or_the_busy_forward() {
        assert_eq!(resolve("102", table(&[("102", fwd(None, None, Some("103")), true)])), ("102".into(), Route::Busy, None));
        let (at, r, _) = resolve("102", table(&[("102", fwd(None, Some("104"), None), true), ("104", ForwardConfig::default(), false)]));
        assert_eq!(at, "104");
        assert!(r.plain());
    }

    #[test]
    fn always_is_followed_and_the_target_keeps_its_own_rules() {
        let rows = [("102", fwd(Some("103"), None, None), false), ("103", fwd(None, Some("agent"), Some("104")), false)];
        let (at, r, by) = resolve("102", table(&rows));
        assert_eq!((at.as_str(), by.as_deref()), ("103", Some("102")));
        assert_eq!(r, Route::Ring { no_answer: Some((Duration::from_secs(20), "104".into())), busy: Some("agent".into()) });
    }

    #[test]
    fn a_number_outside_is_reached_by_the_last_forward() {
        // 102 -> 103 -> a mobile: 103's forward decides whether it may go out.
        let rows = [("102", fwd(Some("103"), None, None), false), ("103", fwd(Some("01511234567"), None, None), false)];
        let (at, r, by) = resolve("102", table(&rows));
        assert_eq!((at.as_str(), by.as_deref()), ("01511234567", Some("103")));
        assert!(r.plain());
    }

    #[test]
    fn a_loop_rings_where_it_closes() {
        let rows = [("102", fwd(Some("103"), None, None), false), ("103", fwd(Some("102"), None, None), false)];
        let (at, r, _) = resolve("102", table(&rows));
        assert_eq!(at, "103");
        assert!(r.plain());
    }
}
