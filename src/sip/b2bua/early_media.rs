//! What the caller hears while the callee rings: a 180, a device's early
//! media (183 with our relay's SDP), or the door preview of a ringing panel
//! phone (183 with its bridge's SDP; `preview.rs` says which calls may).
use super::call::{sdp_content_type, Call, CallerKind};
use super::machine::ForkId;

impl Call {
    /// The machine's `Ringing`: 180, or 183 with SDP from `early_media_from`.
    pub(super) async fn ringing(&mut self, early_media_from: Option<ForkId>) {
        // While browsers and SIP devices both ring, the caller gets no early
        // media from a SIP device: its one answer must name the path of the
        // device that answers. The browser's preview is the exception: the
        // 200 names the relay if a SIP device answers after all.
        let undecided = self.media.callee_undecided();
        let browser_sdp = |f: &ForkId| self.forks.sdp(*f).is_some_and(|s| crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&s)));
        let early_media_from = early_media_from.filter(|f| !undecided || (self.preview && browser_sdp(f)));
        let leg = self.fork_leg();
        // (A previewing browser among SIP devices is no device of the relay's.)
        if let Some(host) = early_media_from.filter(|_| !undecided).and_then(|f| self.forks.host(f)) {
            self.media.set_signalling_host(leg, host);
        }
        let browser = self.media.is_browser(leg) || undecided;
        let body = match early_media_from.and_then(|f| self.forks.sdp(f)) {
            Some(sdp) if browser && self.preview => match self.media.preview_answer(leg, &sdp).await {
                Ok(s) => {
                    tracing::info!(call_id = %self.call_id, callee = %self.callee_ext, "door preview: the ringing browser receives the caller's media, the caller hears nothing of it until it answers");
                    Some(s)
                }
                Err(e) => {
                    tracing::info!(call_id = %self.call_id, error = %e, "door preview refused; sending 180");
                    None
                }
            },
            Some(_) if browser => {
                tracing::info!(call_id = %self.call_id, "a ringing browser sent SDP in a call that offered no preview: ignored, sending 180");
                None
            }
            Some(sdp) => match self.media.translate(leg, &sdp).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::info!(call_id = %self.call_id, error = %e, "early media SDP unusable; sending 180");
                    None
                }
            },
            None => None,
        };
        if self.kind == CallerKind::Incoming {
            let headers = body.as_ref().map(|_| vec![sdp_content_type()]);
            let _ = self.caller.ringing(headers, body);
        }
    }
}
