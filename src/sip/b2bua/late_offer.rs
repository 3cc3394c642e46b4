//! A re-INVITE without SDP (RFC 3261 14.2, RFC 3264: the offer is ours, in
//! the 200, and the answer comes back in the ACK), as providers send for a
//! session refresh. It is answered here, not passed to the other leg (whose
//! device would get an ACK without the answer to its own offer): the 200
//! offers the media the call has now (the other side's last SDP through the
//! relay: the same relay port, a new o= version, this leg's SRTP), and the
//! answer in the ACK tells the relay where the device listens, and its key.
use super::call::{sdp_content_type, Call, CallMsg};
use crate::media::Leg;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{HeadersExt, Request, StatusCode};
use std::time::Duration;
use tokio::time::Instant;

/// How long the ACK may take (64 × T1, as the INVITE transaction waits).
const ACK_WAIT: Duration = Duration::from_secs(32);
const ACK_POLL: Duration = Duration::from_millis(20);

impl Call {
    /// Whether a mid-dialog INVITE from `from` is ours to answer with an
    /// offer: it has no SDP, and no browser is on the call (a browser's
    /// bridge makes its own offers; such a re-INVITE is passed on as before).
    pub(super) fn is_late_offer(&self, req: &Request) -> bool {
        req.method == rsipstack::sip::Method::Invite && req.body.is_empty() && !self.media.is_browser(Leg::A) && !self.media.is_browser(Leg::B)
    }

    /// 200 with our offer toward `from`'s device; its ACK's answer comes
    /// back as `CallMsg::LateAnswer` (`dialog`: the dialog the re-INVITE came in on).
    pub(super) async fn answer_late_offer(&mut self, from: Leg, req: &Request, dialog: InviteDialog, handle: TransactionHandle) {
        let offer = match self.media.offer_again(from).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "re-INVITE without SDP: no offer of ours to make");
                let _ = handle.reply(StatusCode::ServerInternalError).await;
                return;
            }
        };
        let Some(cseq) = req.cseq_header().ok().and_then(|c| c.seq().ok()) else {
            let _ = handle.reply(StatusCode::BadRequest).await;
            return;
        };
        tracing::info!(call_id = %self.call_id, by = %self.ext_on(from), "re-INVITE without SDP: our offer in the 200, the answer expected in the ACK");
        let _ = handle.respond(StatusCode::OK, Some(vec![sdp_content_type()]), Some(offer)).await;
        let msgs = self.msgs.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + ACK_WAIT;
            loop {
                let ack = dialog.last_remote_ack().filter(|a| a.cseq_header().ok().and_then(|c| c.seq().ok()) == Some(cseq));
                if let Some(ack) = ack {
                    let _ = msgs.send(CallMsg::LateAnswer(from, Some(ack.body)));
                    return;
                }
                if Instant::now() >= deadline || dialog.state().is_terminated() || msgs.is_closed() {
                    let _ = msgs.send(CallMsg::LateAnswer(from, None));
                    return;
                }
                tokio::time::sleep(ACK_POLL).await;
            }
        });
    }

    /// The ACK to our offer came (its body, the answer), or never did.
    pub(super) async fn on_late_answer(&mut self, from: Leg, answer: Option<Vec<u8>>) {
        let answer = match answer {
            Some(body) if !body.is_empty() => body,
            Some(_) => {
                tracing::warn!(call_id = %self.call_id, by = %self.ext_on(from), "re-INVITE without SDP: the ACK carried no answer to our offer; media left as it was");
                return;
            }
            None => {
                tracing::warn!(call_id = %self.call_id, by = %self.ext_on(from), "re-INVITE without SDP: no ACK to our 200");
                return;
            }
        };
        let was_held = self.media.is_held_by(from);
        match self.media.translate(from, &answer).await {
            Ok(_) => {
                tracing::info!(call_id = %self.call_id, by = %self.ext_on(from), "re-INVITE without SDP: the answer in the ACK taken");
                let held = self.media.is_held_by(from);
                if held != was_held {
                    self.publish_hold(from, held);
                }
            }
            Err(e) => tracing::warn!(call_id = %self.call_id, by = %self.ext_on(from), error = %e, "re-INVITE without SDP: the answer in the ACK is unusable; media left as it was"),
        }
    }
}
