//! Call pickup, decided without I/O: which ringing call a picker may take.
//!
//! The rule: an undirected pickup (`feature_codes.pickup`) takes the oldest
//! unanswered call that rings a group the picker is a member of, or rings an
//! extension that shares a group with the picker. A directed pickup
//! (`feature_codes.directed_pickup` + number) takes the oldest call ringing
//! that extension (or dialled to that group), whoever the picker is. Nobody
//! picks up their own call.

/// An unanswered call as the pickup decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingingCall {
    pub call_id: String,
    pub caller: String,
    /// The number dialled (after forwards): an extension or a group.
    pub callee: String,
    /// The extensions being rung (a group's members, or the callee).
    pub rung: Vec<String>,
    /// Order of arrival: lower is older.
    pub seq: u64,
}

/// A group as the decision needs it: its number and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub number: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Undirected: no call rings in the picker's groups (or the picker is in none).
    NothingInYourGroups,
    /// Directed: nothing rings at that number.
    NothingRingingAt(String),
}

impl Refusal {
    /// The SIP answer: 480 with a reason phrase saying why.
    pub fn reason(&self) -> String {
        match self {
            Refusal::NothingInYourGroups => "Nothing ringing in your groups".into(),
            Refusal::NothingRingingAt(n) => format!("Nothing ringing at {n}"),
        }
    }
}

/// The call `picker` takes, or why none. `target`: a directed pickup's number.
pub fn choose(picker: &str, target: Option<&str>, calls: &[RingingCall], groups: &[GroupView]) -> Result<String, Refusal> {
    let mine: Vec<&GroupView> = groups.iter().filter(|g| g.members.iter().any(|m| m == picker)).collect();
    let eligible = |c: &&RingingCall| -> bool {
        if c.caller == picker {
            return false;
        }
        match target {
            Some(t) => c.callee == t || c.rung.iter().any(|r| r == t),
            None => mine.iter().any(|g| g.number == c.callee || c.rung.iter().any(|r| g.members.contains(r))),
        }
    };
    match calls.iter().filter(eligible).min_by_key(|c| c.seq) {
        Some(c) => Ok(c.call_id.clone()),
        None => Err(match target {
            Some(t) => Refusal::NothingRingingAt(t.to_string()),
            None => Refusal::NothingInYourGroups,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, caller: &str, callee: &str, rung: &[&str], seq: u64) -> RingingCall {
        RingingCall { call_id: id.into(), caller: caller.into(), callee: callee.into(), rung: rung.iter().map(|s| s.to_string()).collect(), seq }
    }

    fn house() -> Vec<GroupView> {
        vec![GroupView { number: "600".into(), members: vec!["102".into(), "103".into()] }]
    }

    #[test]
    fn undirected_takes_the_oldest_call_ringing_in_the_pickers_groups() {
        let calls = [call("new", "101", "102", &["102"], 7), call("old", "101", "600", &["102", "103"], 3), call("other", "101", "104", &["104"], 1)];
        assert_eq!(choose("103", None, &calls, &house()), Ok("old".into()));
        // A call to a member directly counts too.
        assert_eq!(choose("103", None, &calls[..1], &house()), Ok("new".into()));
    }

    #[test]
    fn outside_the_pickers_groups_nothing_is_taken_unless_directed() {
        let calls = [call("c", "101", "102", &["102"], 1)];
        assert_eq!(choose("104", None, &calls, &house()), Err(Refusal::NothingInYourGroups));
        assert_eq!(choose("104", Some("102"), &calls, &house()), Ok("c".into()));
    }

    #[test]
    fn directed_matches_the_rung_extension_or_the_dialled_group() {
        let calls = [call("g", "101", "600", &["102", "103"], 2), call("d", "101", "105", &["105"], 1)];
        assert_eq!(choose("104", Some("103"), &calls, &house()), Ok("g".into()));
        assert_eq!(choose("104", Some("600"), &calls, &house()), Ok("g".into()));
        assert_eq!(choose("104", Some("106"), &calls, &house()), Err(Refusal::NothingRingingAt("106".into())));
        assert_eq!(Refusal::NothingRingingAt("106".into()).reason(), "Nothing ringing at 106");
    }

    #[test]
    fn nobody_picks_up_their_own_call_and_nothing_ringing_is_refused() {
        let calls = [call("mine", "103", "102", &["102"], 1)];
        assert_eq!(choose("103", None, &calls, &house()), Err(Refusal::NothingInYourGroups));
        assert_eq!(choose("103", Some("102"), &calls, &house()), Err(Refusal::NothingRingingAt("102".into())));
        assert_eq!(choose("103", None, &[], &house()), Err(Refusal::NothingInYourGroups));
    }
}
