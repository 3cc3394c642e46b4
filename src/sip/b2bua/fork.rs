//! One INVITE toward one registered contact of the callee (a "fork").
use crate::sip::core::SipCore;
use crate::sip::registrar::bindings::Binding;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::transport::SipAddr;

pub enum ForkEvent {
    State(DialogState),
    Done(InviteAsyncResult),
}

/// Send the INVITE; every state change and the final result go to `report`.
/// `from_ext` is who the callee's display shows as calling.
pub fn start(core: &SipCore, b: &Binding, from_ext: &str, offer: &[u8], headers: Vec<rsipstack::sip::Header>, report: impl Fn(ForkEvent) -> bool + Send + Sync + 'static) -> Result<InviteDialog, String> {
    let callee = rsipstack::sip::Uri::try_from(b.contact_uri.as_str()).map_err(|e| format!("unusable contact {}: {e}", b.contact_uri))?;
    let transport = match b.transport.as_str() {
        "tcp" => rsipstack::sip::Transport::Tcp,
        "tls" => rsipstack::sip::Transport::Tls,
        "ws" => rsipstack::sip::Transport::Ws,
        "wss" => rsipstack::sip::Transport::Wss,
        _ => rsipstack::sip::Transport::Udp,
    };
    // Send where the device is reachable: its own connection for TCP/TLS,
    // the source address for a device behind NAT (see delivery_address).
    let destination = b
        .delivery_address()
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| SipAddr { r#type: Some(transport), addr: addr.into() });
    let listen = match b.transport.as_str() {
        "tcp" => crate::config::Transport::Tcp,
        "tls" => crate::config::Transport::Tls,
        _ => crate::config::Transport::Udp,
    };
    let mut caller = core.contact_uri(Some(from_ext), crate::config::Transport::Udp);
    caller.params.clear();
    let opt = InviteOption {
        caller_display_name: core.extension(from_ext).and_then(|e| e.name),
        caller,
        callee,
        destination,
        content_type: Some("application/sdp".into()),
        offer: Some(offer.to_vec()),
        contact: core.contact_uri(None, listen),
        headers: (!headers.is_empty()).then_some(headers),
        ..Default::default()
    };
    let (state_tx, mut state_rx) = core.dialogs.new_dialog_state_channel();
    let (dialog, handle) = core.dialogs.do_invite_async(opt, state_tx).map_err(|e| format!("INVITE not sent: {e}"))?;
    let report = std::sync::Arc::new(report);
    let r = report.clone();
    tokio::spawn(async move {
        while let Some(s) = state_rx.recv().await {
            if !r(ForkEvent::State(s)) {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let result = match handle.await {
            Ok(r) => r,
            Err(e) => Err(rsipstack::Error::Error(format!("fork task: {e}"))),
        };
        report(ForkEvent::Done(result));
    });
    Ok(dialog)
}
