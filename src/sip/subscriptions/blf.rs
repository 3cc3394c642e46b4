//! Which calls each extension is in, for BLF (RFC 4235), sans-IO: fed the
//! PBX's call events, it answers which extensions' dialog state changed.
//! A call's caller is the dialog's `initiator`, the callee (and, for a group,
//! each member rung) its `recipient`. When the call is answered, the member
//! that answered (or the extension that picked it up) shows it `confirmed`,
//! the other members' keys go back to `terminated`.
use crate::events::PbxEvent;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Ringing.
    Early,
    Confirmed,
    /// Ended: shown once, then forgotten.
    Terminated,
}

impl DialogState {
    pub fn name(self) -> &'static str {
        match self {
            DialogState::Early => "early",
            DialogState::Confirmed => "confirmed",
            DialogState::Terminated => "terminated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Initiator,
    Recipient,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Initiator => "initiator",
            Direction::Recipient => "recipient",
        }
    }
}

/// One call an extension is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The call's Call-ID (the caller's leg).
    pub call_id: String,
    pub state: DialogState,
    pub direction: Direction,
    /// The other party's number.
    pub remote: String,
}

#[derive(Debug, Default)]
pub struct Tracker {
    by_ext: HashMap<String, Vec<Dialog>>,
}

impl Tracker {
    /// The calls `ext` is in now.
    pub fn dialogs(&self, ext: &str) -> Vec<Dialog> {
        self.by_ext.get(ext).cloned().unwrap_or_default()
    }

    /// Extensions with any call (bounded by the calls in progress).
    pub fn len(&self) -> usize {
        self.by_ext.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ext.is_empty()
    }

    /// Applies a call event; `members`: the extensions rung for the callee
    /// (a group's members; empty for an extension). Returns each extension
    /// whose state changed with the dialogs to show it (an ended call once,
    /// as `terminated`, then forgotten).
    pub fn on_event(&mut self, event: &PbxEvent, members: &[String]) -> Vec<(String, Vec<Dialog>)> {
        match event {
            PbxEvent::Ringing { call_id, caller, callee } => {
                let mut changed = vec![self.set(caller, call_id, DialogState::Early, Direction::Initiator, callee)];
                changed.push(self.set(callee, call_id, DialogState::Early, Direction::Recipient, caller));
                for m in members.iter().filter(|m| *m != caller && *m != callee) {
                    changed.push(self.set(m, call_id, DialogState::Early, Direction::Recipient, caller));
                }
                changed.into_iter().flatten().collect()
            }
            PbxEvent::Answered { call_id, caller, callee, answered_by } => {
                let mut talking = vec![(caller, Direction::Initiator, callee), (callee, Direction::Recipient, caller)];
                if answered_by != caller && answered_by != callee {
                    talking.push((answered_by, Direction::Recipient, caller));
                }
                let mut changed: Vec<_> =
                    talking.into_iter().filter_map(|(ext, dir, remote)| self.set(ext, call_id, DialogState::Confirmed, dir, remote)).collect();
                // The members that did not answer stop ringing.
                for m in members.iter().filter(|m| *m != caller && *m != callee && *m != answered_by) {
                    changed.extend(self.end(m, call_id));
                }
                changed
            }
            PbxEvent::Ended { call_id, .. } | PbxEvent::Missed { call_id, .. } => {
                let mut exts: Vec<String> =
                    self.by_ext.iter().filter(|(_, ds)| ds.iter().any(|d| &d.call_id == call_id)).map(|(e, _)| e.clone()).collect();
                exts.sort();
                exts.iter().filter_map(|e| self.end(e, call_id)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Sets `ext`'s dialog for `call_id`; `None` when nothing changed.
    fn set(&mut self, ext: &str, call_id: &str, state: DialogState, direction: Direction, remote: &str) -> Option<(String, Vec<Dialog>)> {
        if ext.is_empty() {
            return None;
        }
        let list = self.by_ext.entry(ext.to_string()).or_default();
        match list.iter_mut().find(|d| d.call_id == call_id) {
            Some(d) if d.state == state => return None,
            Some(d) => d.state = state,
            None => list.push(Dialog { call_id: call_id.into(), state, direction, remote: remote.into() }),
        }
        Some((ext.to_string(), list.clone()))
    }

    /// Ends `ext`'s dialog for `call_id`: the list to show (it as
    /// `terminated`), and it is forgotten.
    fn end(&mut self, ext: &str, call_id: &str) -> Option<(String, Vec<Dialog>)> {
        let list = self.by_ext.get_mut(ext)?;
        let pos = list.iter().position(|d| d.call_id == call_id)?;
        let mut shown = list.clone();
        shown[pos].state = DialogState::Terminated;
        list.remove(pos);
        if list.is_empty() {
            self.by_ext.remove(ext);
        }
        Some((ext.to_string(), shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EndReason;

    fn ringing(c: &str, a: &str, b: &str) -> PbxEvent {
        PbxEvent::Ringing { call_id: c.into(), caller: a.into(), callee: b.into() }
    }

    type Shown<'a> = (&'a str, DialogState, Direction, &'a str);

    fn states(changed: &[(String, Vec<Dialog>)]) -> Vec<(&str, Vec<Shown<'_>>)> {
        changed
            .iter()
            .map(|(e, ds)| (e.as_str(), ds.iter().map(|d| (d.call_id.as_str(), d.state, d.direction, d.remote.as_str())).collect()))
            .collect()
    }

    #[test]
    fn a_call_goes_early_confirmed_terminated_on_both_sides() {
        use DialogState::*;
        use Direction::*;
        let mut t = Tracker::default();
        let c = t.on_event(&ringing("c1", "101", "102"), &[]);
        assert_eq!(states(&c), vec![("101", vec![("c1", Early, Initiator, "102")]), ("102", vec![("c1", Early, Recipient, "101")])]);
        let c = t.on_event(&PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "102".into() }, &[]);
        assert_eq!(states(&c), vec![("101", vec![("c1", Confirmed, Initiator, "102")]), ("102", vec![("c1", Confirmed, Recipient, "101")])]);
        let end = PbxEvent::Ended {
            call_id: "c1".into(),
            caller: "101".into(),
            callee: "102".into(),
            reason: EndReason::CallerHangup,
            answered: true,
            duration_ms: 5,
        };
        let c = t.on_event(&end, &[]);
        assert_eq!(states(&c), vec![("101", vec![("c1", Terminated, Initiator, "102")]), ("102", vec![("c1", Terminated, Recipient, "101")])]);
        assert!(t.is_empty(), "ended calls are forgotten");
        assert!(t.on_event(&end, &[]).is_empty(), "a repeated end changes nothing");
    }

    #[test]
    fn group_members_ring_and_stop_when_someone_answers() {
        let mut t = Tracker::default();
        let members = vec!["102".to_string(), "103".to_string(), "101".to_string()];
        let c = t.on_event(&ringing("c1", "101", "600"), &members);
        let exts: Vec<_> = c.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(exts, vec!["101", "600", "102", "103"], "the caller is not its own recipient");
        assert_eq!(t.dialogs("103")[0].state, DialogState::Early);
        let answered = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "600".into(), answered_by: "103".into() };
        let c = t.on_event(&answered, &members);
        assert_eq!(states(&c), vec![
            ("101", vec![("c1", DialogState::Confirmed, Direction::Initiator, "600")]),
            ("600", vec![("c1", DialogState::Confirmed, Direction::Recipient, "101")]),
            ("103", vec![("c1", DialogState::Confirmed, Direction::Recipient, "101")]),
            ("102", vec![("c1", DialogState::Terminated, Direction::Recipient, "101")]),
        ], "the member that answered is confirmed, the other one terminated");
        assert!(t.dialogs("102").is_empty());
        assert_eq!(t.dialogs("103")[0].state, DialogState::Confirmed);
        assert_eq!(t.dialogs("600")[0].state, DialogState::Confirmed);
        // The call ends: the answering member's key too.
        let end = PbxEvent::Missed { call_id: "c1".into(), caller: "101".into(), callee: "600".into() };
        let c = t.on_event(&end, &members);
        assert!(c.iter().any(|(e, ds)| e == "103" && ds[0].state == DialogState::Terminated), "{c:?}");
        assert!(t.is_empty());
    }

    #[test]
    fn a_picker_outside_the_call_shows_it_confirmed() {
        let mut t = Tracker::default();
        t.on_event(&ringing("c1", "101", "102"), &[]);
        let picked = PbxEvent::Answered { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered_by: "104".into() };
        let c = t.on_event(&picked, &[]);
        assert_eq!(states(&c), vec![
            ("101", vec![("c1", DialogState::Confirmed, Direction::Initiator, "102")]),
            ("102", vec![("c1", DialogState::Confirmed, Direction::Recipient, "101")]),
            ("104", vec![("c1", DialogState::Confirmed, Direction::Recipient, "101")]),
        ]);
    }

    #[test]
    fn two_calls_of_one_extension_are_kept_apart() {
        let mut t = Tracker::default();
        t.on_event(&ringing("c1", "101", "102"), &[]);
        t.on_event(&ringing("c2", "103", "102"), &[]);
        assert_eq!(t.dialogs("102").len(), 2);
        let c = t.on_event(&PbxEvent::Missed { call_id: "c1".into(), caller: "101".into(), callee: "102".into() }, &[]);
        let for_102 = &c.iter().find(|(e, _)| e == "102").unwrap().1;
        assert_eq!(for_102.iter().map(|d| d.state).collect::<Vec<_>>(), vec![DialogState::Terminated, DialogState::Early]);
        assert_eq!(t.dialogs("102").len(), 1);
    }

    #[test]
    fn other_events_change_nothing() {
        let mut t = Tracker::default();
        assert!(t.on_event(&PbxEvent::Dtmf { call_id: "c".into(), from: "101".into(), digit: '1' }, &[]).is_empty());
    }
}
