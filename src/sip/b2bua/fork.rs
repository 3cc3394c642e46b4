//! One INVITE toward one registered contact of the callee (a "fork"), and
//! what it reports, in the order the callee sent it.
use super::machine::{ForkId, Input};
use crate::sip::core::SipCore;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Response, StatusCode, StatusCodeKind};
use rsipstack::transport::SipAddr;

/// How a fork presents the call when it leaves the house over a trunk: our
/// identity at the provider, the digest credential for its 401/407, and
/// the identity headers it reads the caller ID from.
#[derive(Clone)]
pub struct Presented {
    pub from: rsipstack::sip::Uri,
    pub credential: Option<rsipstack::dialog::authenticate::Credential>,
    pub headers: Vec<rsipstack::sip::Header>,
    /// Our Contact toward the provider, when not the listener's (a TLS
    /// trunk's own connection, see `SipCore::contact_over`).
    pub contact: Option<rsipstack::sip::Uri>,
    /// The trunk's `srtp:`: SDES-SRTP on the media toward the provider.
    pub srtp: crate::config::SrtpMode,
}

pub enum ForkEvent {
    State(DialogState),
    Done(InviteAsyncResult),
}

/// Send the INVITE; every state change and the final result go to `report`,
/// one at a time and in the order the callee sent them (a 180 is reported
/// before the 200 that followed it). `report` returning false stops it.
/// `from_ext` is who the callee's display shows as calling.
/// `presented`: the call goes out over a trunk (see [`Presented`]).
pub fn start(core: &SipCore, b: &Binding, from_ext: &str, offer: &[u8], mut headers: Vec<rsipstack::sip::Header>, presented: Option<&Presented>, report: impl Fn(ForkEvent) -> bool + Send + Sync + 'static) -> Result<InviteDialog, String> {
    let callee = rsipstack::sip::Uri::try_from(b.contact_uri.as_str()).map_err(|e| format!("unusable contact {}: {e}", b.contact_uri))?;
    let transport = b.transport;
    // Send where the device is reachable: its own connection for TCP/TLS,
    // the source address for a device behind NAT (see delivery_address).
    let destination = b
        .delivery_address()
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| SipAddr { r#type: Some(transport), addr: addr.into() });
    let listen = crate::sip::core::listener_transport(b.transport);
    let mut caller = core.contact_uri(Some(from_ext), crate::config::Transport::Udp);
    caller.params.clear();
    let mut display = core.extension(from_ext).and_then(|e| e.name);
    let mut credential = None;
    if let Some(p) = presented {
        caller = p.from.clone();
        display = None;
        credential = p.credential.clone();
        headers.extend(p.headers.iter().cloned());
    }
    let opt = InviteOption {
        caller_display_name: display,
        caller,
        credential,
        callee,
        destination,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.to_vec()),
        contact: presented.and_then(|p| p.contact.clone()).unwrap_or_else(|| core.contact_uri(None, listen)),
        headers: (!headers.is_empty()).then_some(headers),
        ..Default::default()
    };
    let (state_tx, state_rx) = core.dialogs.new_dialog_state_channel();
    let (dialog, handle) = core.dialogs.do_invite_async(opt, state_tx).map_err(|e| format!("INVITE not sent: {e}"))?;
    tokio::spawn(report_in_order(state_rx, handle, report));
    Ok(dialog)
}

/// One task per fork: the dialog's states and the INVITE's final result
/// reach `report` in the order rsipstack saw the responses. rsipstack queues
/// a provisional response's state before it finishes the transaction on the
/// final one, so every state queued when the result arrives is older than
/// the result and goes first.
///
/// The task ends once both the result and `Terminated` were reported, not
/// when the dialog's state channel closes: rsipstack keeps an answered
/// fork's dialog 64*T1 (32 s) after the call for the INVITE's Accepted
/// state (RFC 6026), and waiting for that would keep `report` (the call's
/// message channel) and the finished INVITE task's slot (`done`) as long.
async fn report_in_order<F, T>(mut states: DialogStateReceiver, mut done: F, report: impl Fn(ForkEvent) -> bool)
where
    F: std::future::Future<Output = Result<InviteAsyncResult, T>> + Unpin,
    T: std::fmt::Display,
{
    let mut ended = false;
    let forward = |s: DialogState, ended: &mut bool| {
        *ended |= matches!(s, DialogState::Terminated(..));
        report(ForkEvent::State(s))
    };
    let joined = loop {
        tokio::select! {
            biased;
            s = states.recv() => match s {
                Some(s) => {
                    if !forward(s, &mut ended) {
                        return;
                    }
                }
                None => break (&mut done).await,
            },
            r = &mut done => break r,
        }
    };
    drop(done);
    while let Ok(s) = states.try_recv() {
        if !forward(s, &mut ended) {
            return;
        }
    }
    let result = match joined {
        Ok(result) => result,
        Err(e) => Err(rsipstack::Error::Error(format!("fork task: {e}"))),
    };
    if !report(ForkEvent::Done(result)) {
        return;
    }
    // In-dialog events of the answered fork (BYE, re-INVITE, INFO) follow,
    // up to its end: nothing comes after `Terminated`.
    while !ended {
        let Some(s) = states.recv().await else { return };
        if !forward(s, &mut ended) {
            return;
        }
    }
}

/// What a fork's report means for the call, whoever drives it (a call, or
/// click-to-dial ringing its first party).
#[derive(Debug)]
pub enum Report<'a> {
    /// 180/183 (not 100 Trying): the device rings, maybe with early media.
    Progress(&'a Response),
    /// 2xx to the INVITE, with the device's SDP answer.
    Answered(&'a Response),
    /// Final non-2xx, no answer at all (408), or not sent (503).
    Failed(u16),
    /// Anything else: 100 Trying, later in-dialog states.
    Other,
}

pub fn classify(event: &ForkEvent) -> Report<'_> {
    match event {
        ForkEvent::State(DialogState::Early(_, resp)) if resp.status_code != StatusCode::Trying => Report::Progress(resp),
        ForkEvent::State(_) => Report::Other,
        ForkEvent::Done(Ok((_, Some(resp)))) if resp.status_code.kind() == StatusCodeKind::Successful => Report::Answered(resp),
        ForkEvent::Done(Ok((_, Some(resp)))) => Report::Failed(resp.status_code.code()),
        // The transaction timed out (Timer B): nobody answered.
        ForkEvent::Done(Ok((_, None))) => Report::Failed(408),
        ForkEvent::Done(Err(rsipstack::Error::IoError(e))) if e.kind() == std::io::ErrorKind::TimedOut => Report::Failed(408),
        // It could not be sent (transport gone, connection refused).
        ForkEvent::Done(Err(_)) => Report::Failed(503),
    }
}

impl Report<'_> {
    /// The call machine's input for fork `fork`, if this report is one.
    pub fn input(&self, fork: ForkId) -> Option<Input> {
        match self {
            Report::Progress(resp) => Some(Input::ForkProgress { fork, has_sdp: !resp.body.is_empty() }),
            Report::Answered(_) => Some(Input::ForkAnswered { fork }),
            Report::Failed(status) => Some(Input::ForkFailed { fork, status: *status }),
            Report::Other => None,
        }
    }
}

/// BroadSoft remote control: a phone that can be answered by `NOTIFY`
/// (`Event: talk`) lists `talk` in `Allow-Events` of its ringing response.
pub(super) fn offers_remote_answer(resp: &rsipstack::sip::Response) -> bool {
    resp.headers.iter().any(|h| match h {
        rsipstack::sip::Header::Other(name, value) => {
            (name.eq_ignore_ascii_case("Allow-Events") || name.eq_ignore_ascii_case("u"))
                && value.split(',').any(|e| e.trim().eq_ignore_ascii_case("talk"))
        }
        _ => false,
    })
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
