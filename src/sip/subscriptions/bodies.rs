//! NOTIFY bodies: `application/dialog-info+xml` (RFC 4235) for BLF and
//! `application/simple-message-summary` (RFC 3842) for MWI. Pure functions.
use super::blf::{Dialog, DialogState};

/// A party as a BLF key shows it.
pub struct Party<'a> {
    pub number: &'a str,
    pub display: Option<&'a str>,
}

/// The full dialog state of `ext` (`entity`), `version` per subscription.
/// `name_of` gives a number's display name: the other party's (who calls,
/// shown on the key while ringing) and the extension's own.
pub fn dialog_info(ext: &str, domain: &str, version: u32, dialogs: &[Dialog], name_of: &dyn Fn(&str) -> Option<String>) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    x.push_str(&format!(
        "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" entity=\"{}\">\r\n",
        escape(&uri(ext, domain))
    ));
    for d in dialogs {
        let remote_name = name_of(&d.remote);
        let local_name = name_of(ext);
        let local = Party { number: ext, display: local_name.as_deref() };
        let remote = Party { number: &d.remote, display: remote_name.as_deref() };
        // The caller's leg is named by its Call-ID; for BLF pickup a phone
        // dials the pickup code (see docs), so no tags are claimed here.
        x.push_str(&format!(
            "  <dialog id=\"{id}\" call-id=\"{id}\" direction=\"{dir}\">\r\n    <state>{state}</state>\r\n",
            id = escape(&d.call_id),
            dir = d.direction.name(),
            state = d.state.name()
        ));
        if d.state != DialogState::Terminated {
            x.push_str(&party("local", &local, domain));
            x.push_str(&party("remote", &remote, domain));
        }
        x.push_str("  </dialog>\r\n");
    }
    x.push_str("</dialog-info>\r\n");
    x
}

fn party(tag: &str, p: &Party, domain: &str) -> String {
    let u = escape(&uri(p.number, domain));
    let display = p.display.map(|d| format!(" display=\"{}\"", escape(d))).unwrap_or_default();
    format!("    <{tag}>\r\n      <identity{display}>{u}</identity>\r\n      <target uri=\"{u}\"/>\r\n    </{tag}>\r\n")
}

fn uri(number: &str, domain: &str) -> String {
    format!("sip:{number}@{domain}")
}

/// XML text and attribute escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Counts of one mailbox's voice messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub new: u32,
    pub old: u32,
}

/// The message summary of `ext`'s mailbox (no urgent messages exist).
pub fn message_summary(ext: &str, domain: &str, c: Counts) -> String {
    let waiting = if c.new > 0 { "yes" } else { "no" };
    format!("Messages-Waiting: {waiting}\r\nMessage-Account: {}\r\nVoice-Message: {}/{} (0/0)\r\n", uri(ext, domain), c.new, c.old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::subscriptions::blf::Direction;

    fn names(n: &str) -> Option<String> {
        match n {
            "101" => Some("Front <door> & \"gate\"".to_string()),
            "102" => Some("Kitchen".to_string()),
            _ => None,
        }
    }

    #[test]
    fn idle_is_an_empty_full_document() {
        assert_eq!(
            dialog_info("102", "pbx.lan", 0, &[], &names),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:102@pbx.lan\">\r\n\
             </dialog-info>\r\n"
        );
    }

    #[test]
    fn ringing_shows_direction_and_who_calls() {
        let d = Dialog { call_id: "abc@h".into(), state: DialogState::Early, direction: Direction::Recipient, remote: "101".into() };
        assert_eq!(
            dialog_info("102", "pbx.lan", 3, &[d], &names),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"3\" state=\"full\" entity=\"sip:102@pbx.lan\">\r\n\
             \x20 <dialog id=\"abc@h\" call-id=\"abc@h\" direction=\"recipient\">\r\n\
             \x20   <state>early</state>\r\n\
             \x20   <local>\r\n\
             \x20     <identity display=\"Kitchen\">sip:102@pbx.lan</identity>\r\n\
             \x20     <target uri=\"sip:102@pbx.lan\"/>\r\n\
             \x20   </local>\r\n\
             \x20   <remote>\r\n\
             \x20     <identity display=\"Front &lt;door&gt; &amp; &quot;gate&quot;\">sip:101@pbx.lan</identity>\r\n\
             \x20     <target uri=\"sip:101@pbx.lan\"/>\r\n\
             \x20   </remote>\r\n\
             \x20 </dialog>\r\n\
             </dialog-info>\r\n"
        );
    }

    #[test]
    fn terminated_dialogs_carry_only_their_state() {
        let d = Dialog { call_id: "c\"1".into(), state: DialogState::Terminated, direction: Direction::Initiator, remote: "102".into() };
        let x = dialog_info("101", "h", 7, &[d], &names);
        assert!(x.contains("<dialog id=\"c&quot;1\" call-id=\"c&quot;1\" direction=\"initiator\">\r\n    <state>terminated</state>\r\n  </dialog>\r\n"), "{x}");
        assert!(!x.contains("<remote>"));
    }

    #[test]
    fn message_summary_counts_new_and_old() {
        assert_eq!(
            message_summary("102", "pbx.lan", Counts { new: 2, old: 1 }),
            "Messages-Waiting: yes\r\nMessage-Account: sip:102@pbx.lan\r\nVoice-Message: 2/1 (0/0)\r\n"
        );
        assert_eq!(
            message_summary("102", "pbx.lan", Counts { new: 0, old: 4 }),
            "Messages-Waiting: no\r\nMessage-Account: sip:102@pbx.lan\r\nVoice-Message: 0/4 (0/0)\r\n"
        );
    }
}
