//! Key presses as SIP INFO (RFC 2976, `application/dtmf-relay`): reading a
//! device's, and sending ours in order, one call at a time.
use crate::config::{Config, DtmfMode};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, Request};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether `extension`'s device takes key presses as SIP INFO.
pub fn takes_info(config: &Config, extension: &str) -> bool {
    config.extensions.iter().any(|e| e.extension == extension && e.dtmf == DtmfMode::Info)
}

/// Who is on a call's two legs, for choosing each leg's key press mode.
pub struct LegParties<'a> {
    /// The caller's extension.
    pub caller: &'a str,
    /// The number dialled (a ring group's number, a park slot).
    pub callee: &'a str,
    /// The extension the answering fork rings when that is not the
    /// callee: a ring group's member, the picker.
    pub member: Option<&'a str>,
    /// The answering fork is the AI agent (RFC 4733 whatever the setting).
    pub agent: bool,
}

/// Whether each leg takes key presses as SIP INFO: `(caller leg, other
/// leg)`, each by the `dtmf` setting of the extension whose device is on it.
pub fn legs_take_info(config: &Config, p: &LegParties) -> (bool, bool) {
    let callee = p.member.unwrap_or(p.callee);
    (takes_info(config, p.caller), !p.agent && takes_info(config, callee))
}

/// One task per call sends its INFO key presses one after the other, so
/// digits pressed in quick succession arrive in order.
pub struct InfoSender(mpsc::UnboundedSender<(InviteDialog, String)>);

impl InfoSender {
    pub fn new(call_id: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(InviteDialog, String)>();
        tokio::spawn(async move {
            while let Some((dialog, digits)) = rx.recv().await {
                send_dtmf_info(&dialog, &digits, &call_id).await;
            }
        });
        InfoSender(tx)
    }

    pub fn send(&self, dialog: InviteDialog, digits: String) {
        let _ = self.0.send((dialog, digits));
    }
}

/// One digit per request, 250 ms apart.
async fn send_dtmf_info(dialog: &InviteDialog, digits: &str, call_id: &str) {
    for d in digits.chars() {
        let body = format!("Signal={d}\r\nDuration=160\r\n").into_bytes();
        let headers = Some(vec![Header::ContentType("application/dtmf-relay".into())]);
        match dialog.info(headers, Some(body)).await {
            Ok(Some(r)) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful => {}
            Ok(r) => tracing::info!(%call_id, digit = %d, status = ?r.map(|r| r.status_code.code()), "DTMF INFO refused"),
            Err(e) => tracing::info!(%call_id, digit = %d, error = %e, "DTMF INFO failed"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The digit of an INFO carrying application/dtmf-relay or application/dtmf.
pub fn info_digit(req: &Request) -> Option<char> {
    let ct = req.header_value("Content-Type").unwrap_or_default().to_ascii_lowercase();
    if !ct.starts_with("application/dtmf") {
        return None;
    }
    parse_dtmf_info(&String::from_utf8_lossy(&req.body))
}

/// `Signal=5` (application/dtmf-relay) or a bare digit (application/dtmf).
pub fn parse_dtmf_info(body: &str) -> Option<char> {
    let valid = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d');
    for line in body.lines() {
        let line = line.trim();
        if let Some((k, v)) = line.split_once('=') {
            if k.trim().eq_ignore_ascii_case("signal") {
                return v.trim().chars().next().filter(|c| valid(*c)).map(|c| c.to_ascii_uppercase());
            }
        } else if line.len() == 1 {
            return line.chars().next().filter(|c| valid(*c)).map(|c| c.to_ascii_uppercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{legs_take_info, parse_dtmf_info, LegParties};

    #[test]
    fn a_ring_groups_member_that_answered_gets_its_own_mode_not_the_groups() {
        let config = crate::config::parse(
            "extensions: [{extension: '101', password: a}, {extension: '102', password: b, dtmf: info}, {extension: '103', password: c}]\n\
             groups: [{extension: '600', members: ['102', '103']}]\n",
        )
        .unwrap();
        let legs = |caller, callee, member, agent| legs_take_info(&config, &LegParties { caller, callee, member, agent });
        // 101 dials group 600: member 102 (INFO) or 103 (RFC 4733) answers.
        assert_eq!(legs("101", "600", Some("102"), false), (false, true));
        assert_eq!(legs("101", "600", Some("103"), false), (false, false));
        // Called directly, and calling: its own setting as before.
        assert_eq!(legs("101", "102", None, false), (false, true));
        assert_eq!(legs("102", "600", Some("103"), false), (true, false));
        // The agent answering takes RFC 4733 whoever it stands for.
        assert_eq!(legs("101", "102", None, true), (false, false));
    }

    #[test]
    fn dtmf_info_bodies() {
        assert_eq!(parse_dtmf_info("Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(parse_dtmf_info("Signal= #\r\n"), Some('#'));
        assert_eq!(parse_dtmf_info("*"), Some('*'));
        assert_eq!(parse_dtmf_info("Signal=x"), None);
        assert_eq!(parse_dtmf_info(""), None);
    }
}
