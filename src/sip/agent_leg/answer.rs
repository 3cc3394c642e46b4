//! An INVITE to the agent: pick a G.711 law from the offer, bind an RTP
//! port, answer, and run the agent until either side hangs up.
use super::header::{AgentInvite, HEADER};
use crate::agent::session::Mode;
use crate::agent::{Agent, AgentCall, CallActions};
use crate::media::audio::g711::G711;
use crate::media::sdp::Sdp;
use crate::sip::core::SipCoreRef;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn answer(core: SipCoreRef, agent: Arc<Agent>, dialogs: Arc<DialogLayer>, mut tx: Transaction) {
    let info = tx
        .original
        .headers
        .iter()
        .find_map(|h| match h {
            Header::Other(name, value) if name.eq_ignore_ascii_case(HEADER) => Some(AgentInvite::parse(value)),
            _ => None,
        })
        .unwrap_or_default();
    let caller = tx.original.from_header().ok().and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_string)).unwrap_or_default();
    let offer = std::str::from_utf8(&tx.original.body).ok().and_then(|t| Sdp::parse(t).ok());
    // The offer's other streams (a doorbell's video): refused in their places.
    let refused = offer.as_ref().map_or(Vec::new(), |sdp| sdp.refusals_from(1));
    let Some((law, event_pt, peer)) = offer.as_ref().and_then(choose) else {
        tracing::info!(%caller, "agent: offer without PCMU/PCMA refused");
        let _ = tx.reply(StatusCode::NotAcceptableHere).await;
        return;
    };
    let pair = match core.media.allocate_ports() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "agent: no RTP port for the call");
            let _ = tx.reply(StatusCode::ServiceUnavailable).await;
            return;
        }
    };
    let port = pair.lease.rtp_port();
    let answer_sdp = answer_sdp(core.media.advertise(), port, law, event_pt, &refused);
    let crate::media::ports::PortPair { rtp, rtcp, lease } = pair;
    let socket = match rtp.set_nonblocking(true).and_then(|()| tokio::net::UdpSocket::from_std(rtp)) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "agent: RTP socket unusable");
            let _ = tx.reply(StatusCode::ServerInternalError).await;
            return;
        }
    };
    let (state_tx, mut state_rx) = dialogs.new_dialog_state_channel();
    let dialog = match dialogs.get_or_create_server_invite(&tx, state_tx, None, None) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "agent: cannot create the dialog");
            let _ = tx.reply(StatusCode::ServerInternalError).await;
            return;
        }
    };
    let mut handler = dialog.clone();
    tokio::spawn(async move {
        let _ = handler.handle(&mut tx).await;
    });
    if let Err(e) = dialog.accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(answer_sdp.into_bytes())) {
        tracing::warn!(error = %e, "agent: answer not sent");
        return;
    }
    let ended = CancellationToken::new();
    let on_end = ended.clone();
    tokio::spawn(async move {
        while let Some(state) = state_rx.recv().await {
            match state {
                DialogState::Terminated(..) => break,
                DialogState::Info(_, _, h) | DialogState::Updated(_, _, h) | DialogState::Options(_, _, h) => {
                    let _ = h.reply(StatusCode::OK).await;
                }
                _ => {}
            }
        }
        on_end.cancel();
    });
    let (mode, callee) = match (&info.announce, &info.message_for) {
        (Some(text), _) => (Mode::Announce(text.clone()), caller.clone()),
        (None, Some(who)) => (Mode::Message, who.clone()),
        (None, None) => (Mode::Assistant, agent.config.extension.clone()),
    };
    let control = Arc::new(AgentControl { core: core.clone(), dialog: dialog.clone(), call: info.call.clone(), ended: ended.clone() });
    let call = AgentCall {
        call_id: if info.call.is_empty() { "unknown".into() } else { info.call.clone() },
        caller,
        callee,
        mode,
        socket,
        peer,
        law,
        event_pt,
        control,
        ended: ended.clone(),
    };
    crate::agent::runner::run(agent, call).await;
    if !ended.is_cancelled() {
        let _ = dialog.bye().await;
    }
    drop(rtcp);
    drop(lease);
}

/// The law the offer prefers of the two, its telephone-event type, and
/// where it listens.
fn choose(sdp: &Sdp) -> Option<(G711, Option<u8>, std::net::SocketAddr)> {
    let media = sdp.media(0)?;
    let law = media.payload_types().into_iter().find_map(G711::from_payload_type)?;
    let (peer, _) = sdp.media_endpoint(0)?;
    Some((law, media.telephone_event_pt(), peer))
}

/// Our audio answer, then `refused`: one section for each of the offer's
/// other streams, as RFC 3264 §6 has an answer keep the offer's sections.
fn answer_sdp(addr: std::net::IpAddr, port: u16, law: G711, event_pt: Option<u8>, refused: &[String]) -> String {
    let net = if addr.is_ipv6() { "IP6" } else { "IP4" };
    let pt = law.payload_type();
    let name = law.name();
    let id: u32 = rand::random();
    let (fmt, events) = match event_pt {
        Some(e) => (format!("{pt} {e}"), format!("a=rtpmap:{e} telephone-event/8000\r\na=fmtp:{e} 0-15\r\n")),
        None => (pt.to_string(), String::new()),
    };
    format!(
        "v=0\r\no=ha-pbx-agent {id} 1 IN {net} {addr}\r\ns=ha-pbx agent\r\nc=IN {net} {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {fmt}\r\na=rtpmap:{pt} {name}/8000\r\n{events}a=ptime:20\r\na=sendrecv\r\n{}",
        refused.concat()
    )
}

struct AgentControl {
    core: SipCoreRef,
    dialog: InviteDialog,
    call: String,
    ended: CancellationToken,
}

impl CallActions for AgentControl {
    fn hang_up(&self) {
        let dialog = self.dialog.clone();
        let ended = self.ended.clone();
        tokio::spawn(async move {
            let _ = dialog.bye().await;
            ended.cancel();
        });
    }

    fn transfer(&self, extension: &str) -> Result<(), String> {
        let info = self.core.calls.get(&self.call).ok_or_else(|| "the call is no longer known to the PBX".to_string())?;
        // The agent is the callee of the call it answered.
        crate::sip::control::transfer(&self.core, &self.call, &info.callee, extension).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_keeps_the_offers_law_and_event_type() {
        let offer = Sdp::parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n").unwrap();
        let (law, ev, peer) = choose(&offer).unwrap();
        assert_eq!((law, ev, peer.to_string().as_str()), (G711::Pcma, Some(96), "127.0.0.1:4000"));
        let answer = Sdp::parse(&answer_sdp("127.0.0.1".parse().unwrap(), 20002, law, ev, &[])).unwrap();
        assert_eq!(answer.media(0).unwrap().payload_types(), vec![8, 96]);
        assert_eq!(answer.media_endpoint(0).unwrap().0.to_string(), "127.0.0.1:20002");
        assert_eq!(answer.media_count(), 1);
    }

    #[test]
    fn a_camera_doorbells_video_is_refused_in_its_place() {
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96 97\r\na=rtpmap:96 H264/90000\r\n";
        let text = answer_sdp("127.0.0.1".parse().unwrap(), 20002, G711::Pcmu, None, &Sdp::parse(offer).unwrap().refusals_from(1));
        let answer = Sdp::parse(&text).unwrap();
        assert_eq!(answer.media_count(), 2, "{text}");
        assert!(text.ends_with("a=sendrecv\r\nm=video 0 RTP/AVP 96\r\n"), "{text}");
    }

    #[test]
    fn an_offer_without_g711_is_not_usable() {
        let offer = Sdp::parse("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9\r\n").unwrap();
        assert!(choose(&offer).is_none());
    }
}
