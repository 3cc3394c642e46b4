//! Which calls the AI agent takes (sans-IO): `agent.handoff` rules matched
//! by callee, caller and local time of day.
use crate::config::{parse_window, HandoffRule};
use std::time::Duration;

/// How long to ring before the agent takes the call; None: no rule matches.
/// `minute_of_day` is local time (0..1440).
pub fn delay(rules: &[HandoffRule], caller: &str, callee: &str, minute_of_day: u32) -> Option<Duration> {
    rules
        .iter()
        .find(|r| r.callee.as_deref().is_none_or(|c| c == callee) && r.caller.as_deref().is_none_or(|c| c == caller) && r.between.as_deref().is_none_or(|w| in_window(w, minute_of_day)))
        .map(|r| Duration::from_secs(r.ring_secs))
}

/// `HH:MM-HH:MM`, wrapping past midnight when the end is before the start.
fn in_window(window: &str, minute: u32) -> bool {
    let Some((from, to)) = parse_window(window) else { return false };
    if from <= to { (from..to).contains(&minute) } else { minute >= from || minute < to }
}

/// Local time of day now, in minutes (the system's time zone; UTC if unknown).
pub fn local_minute_now() -> u32 {
    let now = jiff::Zoned::now();
    now.hour() as u32 * 60 + now.minute() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(callee: Option<&str>, caller: Option<&str>, between: Option<&str>, ring_secs: u64) -> HandoffRule {
        HandoffRule { callee: callee.map(Into::into), caller: caller.map(Into::into), between: between.map(Into::into), ring_secs }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = [rule(Some("100"), Some("door"), None, 0), rule(Some("100"), None, None, 20)];
        assert_eq!(delay(&rules, "door", "100", 600), Some(Duration::ZERO));
        assert_eq!(delay(&rules, "101", "100", 600), Some(Duration::from_secs(20)));
        assert_eq!(delay(&rules, "101", "102", 600), None);
    }

    #[test]
    fn night_windows_wrap_past_midnight() {
        let rules = [rule(None, None, Some("22:00-07:00"), 0)];
        assert!(delay(&rules, "a", "b", 23 * 60).is_some());
        assert!(delay(&rules, "a", "b", 6 * 60 + 59).is_some());
        assert!(delay(&rules, "a", "b", 7 * 60).is_none());
        assert!(delay(&rules, "a", "b", 12 * 60).is_none());
        let day = [rule(None, None, Some("09:00-17:30"), 5)];
        assert!(delay(&day, "a", "b", 17 * 60 + 29).is_some());
        assert!(delay(&day, "a", "b", 17 * 60 + 30).is_none());
    }

    #[test]
    fn malformed_windows_never_match() {
        assert_eq!(parse_window("25:00-07:00"), None);
        assert_eq!(parse_window("night"), None);
        assert!(delay(&[rule(None, None, Some("x"), 0)], "a", "b", 0).is_none());
    }
}
