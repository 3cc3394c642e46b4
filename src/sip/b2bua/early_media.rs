//! What the caller hears while the callee rings: a 180, a device's early
//! media (183 with our relay's SDP), or the door preview of a ringing panel
//! phone (183 with its bridge's SDP; `preview.rs` says which calls may).
use super::call::{is_browser, sdp_content_type, Call, CallerKind};
use super::machine::ForkId;
use super::preview::Mode;
use crate::sip::registrar::bindings::Binding;

impl Call {
    /// The machine's `Ringing`: 180, or 183 with SDP from `early_media_from`.
    pub(super) async fn ringing(&mut self, early_media_from: Option<ForkId>) {
        let browser_sdp = |f: &ForkId| self.forks.sdp(*f).is_some_and(|s| crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(&s)));
        if self.preview == Some(Mode::FanOut) {
            // The caller's one answer names the preview fan-out (sent by
            // `fan_out_preview`), which every ringing browser shares: a SIP
            // device's early media would take the door away from them.
            if let Some(f) = early_media_from.filter(|f| !browser_sdp(f)) {
                tracing::info!(call_id = %self.call_id, fork = f, "a ringing SIP device's early media is not relayed: the panel phones preview the caller");
            }
            if !self.fan_out_told && self.kind == CallerKind::Incoming {
                let _ = self.caller.ringing(None, None);
            }
            return;
        }
        let single = self.preview == Some(Mode::Single);
        // While browsers and SIP devices both ring, the caller gets no early
        // media from a SIP device: its one answer must name the path of the
        // device that answers. The browser's preview is the exception: the
        // 200 names the relay if a SIP device answers after all.
        let undecided = self.media.callee_undecided();
        let early_media_from = early_media_from.filter(|f| !undecided || (single && browser_sdp(f)));
        let leg = self.fork_leg();
        // (A previewing browser among SIP devices is no device of the relay's.)
        if let Some(host) = early_media_from.filter(|_| !undecided).and_then(|f| self.forks.host(f)) {
            self.media.set_signalling_host(leg, host);
        }
        let browser = self.media.is_browser(leg) || undecided;
        let body = match early_media_from.and_then(|f| self.forks.sdp(f)) {
            Some(sdp) if browser && single => match self.media.preview_answer(leg, &sdp).await {
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

    /// Browser `b`, fork `id`, rings in a fan-out preview: its own offer
    /// (its bridge on the fan-out). None for anything else; Err when it
    /// cannot be offered one (the cap): it is not rung.
    pub(super) async fn fan_out_offer(&mut self, id: ForkId, b: &Binding) -> Option<Result<Vec<u8>, ()>> {
        if self.preview != Some(Mode::FanOut) || !is_browser(b) {
            return None;
        }
        Some(self.media.preview_offer(id).await.map_err(|e| {
            tracing::warn!(call_id = %self.call_id, fork = id, max = super::preview::MAX_PREVIEWS, error = %e, "door preview: this browser is not rung");
        }))
    }

    /// A ringing browser's 183 with SDP in a fan-out preview: it receives
    /// the caller's media from now on; the first one's makes our 183.
    pub(super) async fn fan_out_preview(&mut self, id: ForkId, sdp: &[u8]) {
        if self.preview != Some(Mode::FanOut) || !self.media.has_previews() || !crate::media::webrtc::is_webrtc(&String::from_utf8_lossy(sdp)) {
            return;
        }
        match self.media.preview_early(id, sdp).await {
            Ok(to_caller) => {
                tracing::info!(call_id = %self.call_id, callee = %self.callee_ext, fork = id, "door preview: a ringing browser receives the caller's media, the caller hears nothing of it until one answers");
                if let (Some(body), CallerKind::Incoming) = (to_caller, self.kind) {
                    self.fan_out_told = true;
                    let _ = self.caller.ringing(Some(vec![sdp_content_type()]), Some(body));
                }
            }
            Err(e) => tracing::info!(call_id = %self.call_id, fork = id, error = %e, "door preview refused for this browser"),
        }
    }
}
