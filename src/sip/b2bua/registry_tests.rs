//! Who is in a call (`CallInfo::involves`, `rings`, `party`, `other`): the
//! caller, the number dialled, the ring group's member that answered, and
//! while it rings, the members it rings now.
use super::*;

fn group_call(reg: &CallRegistry) -> mpsc::UnboundedReceiver<Command> {
    let rx = reg.insert("c1", "101", "600");
    reg.set_ringing("c1", vec!["102".into(), "103".into()]);
    rx
}

#[test]
fn a_ringing_group_call_rings_its_members_and_no_one_else() {
    let reg = CallRegistry::default();
    let _rx = group_call(&reg);
    let c = reg.get("c1").unwrap();
    for ext in ["600", "102", "103"] {
        assert!(c.rings(ext) && c.involves(ext), "{ext} is rung");
    }
    assert!(!c.rings("101") && c.involves("101"), "the caller is in it, not rung");
    assert!(!c.rings("104") && !c.involves("104"), "a stranger is not in it");
    // A member only being rung is no party: it cannot send keys or transfer.
    assert_eq!(c.party("102"), None);
    assert_eq!(c.other("102"), None);
    assert_eq!(c.party("600").as_deref(), Some("600"));
}

#[test]
fn a_hunt_moving_on_is_followed() {
    let reg = CallRegistry::default();
    let _rx = reg.insert("c1", "101", "600");
    reg.set_ringing("c1", vec!["102".into()]);
    assert!(reg.get("c1").unwrap().rings("102"));
    reg.set_ringing("c1", vec!["103".into()]);
    let c = reg.get("c1").unwrap();
    assert!(!c.rings("102") && !c.involves("102"), "the member whose turn ended is no longer rung");
    assert!(c.rings("103"));
    // The number dialled is not listed twice.
    reg.set_ringing("c1", vec!["600".into(), "104".into()]);
    assert_eq!(reg.get("c1").unwrap().ringing, vec!["104".to_string()]);
}

#[test]
fn once_answered_only_the_member_that_answered_is_in_it() {
    let reg = CallRegistry::default();
    let _rx = group_call(&reg);
    reg.set_answered("c1");
    reg.set_answered_by("c1", "102");
    // A late ringing report after the answer changes nothing.
    reg.set_ringing("c1", vec!["103".into()]);
    let c = reg.get("c1").unwrap();
    assert!(c.ringing.is_empty());
    assert!(!c.rings("102") && !c.rings("600"), "an answered call rings nobody");
    assert!(c.involves("102") && !c.involves("103"));
    assert_eq!(c.party("102").as_deref(), Some("600"), "the member is the group's leg in commands");
    assert_eq!(c.party("101").as_deref(), Some("101"));
    assert_eq!(c.party("103"), None);
    assert_eq!(c.other("102").as_deref(), Some("101"));
    assert_eq!(c.other("101").as_deref(), Some("102"));
    // Answered by the callee itself: nobody else is named.
    let _rx = reg.insert("c2", "101", "102");
    reg.set_answered_by("c2", "102");
    assert_eq!(reg.get("c2").unwrap().answered_by, None);
}

#[test]
fn new_parties_forget_the_member_and_the_ringing() {
    let reg = CallRegistry::default();
    let _rx = group_call(&reg);
    reg.set_parties("c1", "101", "104");
    let c = reg.get("c1").unwrap();
    assert!(c.ringing.is_empty() && c.answered_by.is_none());
    assert!(!c.involves("102") && c.rings("104"));
}

#[test]
fn a_changed_list_of_rung_members_is_reported_once() {
    let reg = CallRegistry::default();
    let _rx = reg.insert("c1", "101", "600");
    assert_eq!(reg.set_ringing("c1", vec!["102".into(), "600".into()]), Some(vec!["102".to_string()]));
    assert_eq!(reg.set_ringing("c1", vec!["102".into()]), None, "unchanged");
    assert_eq!(reg.set_ringing("c1", vec![]), Some(vec![]));
    assert_eq!(reg.set_ringing("nope", vec!["102".into()]), None);
    reg.set_answered("c1");
    assert_eq!(reg.set_ringing("c1", vec!["103".into()]), None, "an answered call rings nobody");
}

#[test]
fn remote_answer_is_kept_per_extension_rung() {
    let reg = CallRegistry::default();
    let _rx = group_call(&reg);
    reg.set_remote_answer("c1", "103");
    reg.set_remote_answer("c1", "103");
    assert_eq!(reg.get("c1").unwrap().remote_answer, ["103"]);
    reg.set_parties("c1", "101", "104");
    assert!(reg.get("c1").unwrap().remote_answer.is_empty(), "the new callee's devices have not offered it");
}
