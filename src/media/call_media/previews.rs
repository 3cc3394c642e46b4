//! Door preview for several ringing browsers (a ring group, two panel
//! tabs): the caller's media is anchored on a page fan-out
//! ([`crate::media::page`]): the caller gets the fan-out's port in a 183
//! (`recvonly`), and each ringing browser its own WebRTC bridge whose plain
//! side is a listener of the fan-out. Every previewing browser gets a copy
//! of the caller's RTP; what the browsers send is held back by their
//! bridges and never read by the fan-out, so the caller hears none of them.
//!
//! When one browser answers, its bridge becomes the callee leg (the
//! caller's 200 names the bridge, o= version going on from the 183's) and
//! the fan-out goes with every other bridge. When a SIP device answers, the
//! fan-out goes and the caller's 200 names the relay.
//!
//! Video too, when the caller offers VP8 or H.264 as its second stream
//! ([`page::preview_video`]): the 183 takes it `recvonly` on a port pair of
//! the fan-out's, each bridge gets a copy of it, and their keyframe
//! requests (a panel that joins late) reach the caller as one per gap. The
//! bridge that answers takes the caller's video as its audio; a SIP device
//! that answers gets it through the relay as in any call. At most
//! [`MAX_PREVIEWS`] browsers per call.
use super::{CallMedia, LegMedia};
use crate::media::page::{self, PageMedia, PageVideo};
use crate::media::sdp::{OriginKeeper, Sdp};
use crate::media::Leg;

/// Browsers one call may preview at once (each holds a port pair and a bridge).
pub const MAX_PREVIEWS: usize = 8;

/// The fan-out of one call's previews.
pub(super) struct Previews {
    page: PageMedia,
    /// The caller's offer and the one codec (and telephone-event) carried.
    caller_offer: Vec<u8>,
    codecs: Vec<u8>,
    /// The caller's video format carried, if any.
    video_pt: Option<u8>,
    /// o= of the SDP toward the caller (the 183), and toward the listeners.
    to_caller: OriginKeeper,
    to_listeners: OriginKeeper,
    /// The 183 was made: later previews join without a new one.
    caller_told: bool,
}

impl CallMedia {
    /// The WebRTC offer for ringing browser `id` (a fork number): a bridge
    /// of its own on the call's preview fan-out, made with the first one.
    pub async fn preview_offer(&mut self, id: usize) -> anyhow::Result<Vec<u8>> {
        if self.previews.is_none() {
            let caller_offer = self.leg(Leg::A).last_sdp.clone().ok_or_else(|| anyhow::anyhow!("the caller sent no SDP"))?;
            let codecs = page::page_codecs(&caller_offer)?;
            let hosts = page::caller_hosts(self.leg(Leg::A).signalling_host, &caller_offer);
            let mut page = PageMedia::new(self.engine.clone(), MAX_PREVIEWS, hosts)?;
            let video_pt = page::preview_video(&caller_offer);
            if video_pt.is_some() {
                page.enable_video(page::caller_video_rtcp(&caller_offer))?;
            }
            let to_caller = OriginKeeper::new("ha-pbx", self.session_id);
            let to_listeners = OriginKeeper::new("ha-pbx", self.session_id);
            // The answering bridge's key presses join the call's stream.
            self.merged_dtmf();
            self.previews = Some(Previews { page, caller_offer, codecs, video_pt, to_caller, to_listeners, caller_told: false });
        }
        let p = self.previews.as_mut().expect("made above");
        let port = p.page.add_listener(id).map_err(|e| anyhow::anyhow!("{e} (door previews, {MAX_PREVIEWS} per call)"))?;
        let video = p.video_pt.zip(p.page.listener_video_port(id)).map(|(pt, port)| PageVideo { pt, port });
        let plain = page::preview_listener_offer(&p.caller_offer, &p.codecs, p.page.advertise(), port, video, &mut p.to_listeners)?;
        match p.page.browser_offer(id, &plain, self.session_id).await {
            Ok(offer) => Ok(offer),
            Err(e) => {
                p.page.remove_listener(id);
                Err(e)
            }
        }
    }

    /// Whether browsers ring on the preview fan-out.
    pub fn has_previews(&self) -> bool {
        self.previews.is_some()
    }

    /// Browser `id`'s early answer (183): it previews from now on, receive
    /// only. Our SDP for the caller the first time (the fan-out's port),
    /// None once the caller already has it.
    pub async fn preview_early(&mut self, id: usize, browser_sdp: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let engine = self.engine.clone();
        let p = self.previews.as_mut().ok_or_else(|| anyhow::anyhow!("no browser previews this call"))?;
        let text = std::str::from_utf8(browser_sdp).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        let plain = p.page.preview_from_browser(&engine, id, text).await?;
        let to = page::listener_target(&plain).ok_or_else(|| anyhow::anyhow!("the previewing browser's bridge names no port"))?;
        p.page.listen(id, to);
        if let Some(video_to) = page::listener_video_target(&plain).filter(|_| p.video_pt.is_some()) {
            p.page.listen_video(id, video_to);
        }
        if std::mem::replace(&mut p.caller_told, true) {
            return Ok(None);
        }
        let video = p.video_pt.zip(p.page.caller_video_port()).map(|(pt, port)| PageVideo { pt, port });
        let answer = page::preview_caller_answer(&p.caller_offer, &p.codecs, p.page.advertise(), p.page.caller_port(), video, &mut p.to_caller)?;
        Ok(Some(answer.into_bytes()))
    }

    /// A ringing browser stopped ringing (refused, cancelled): its bridge goes.
    pub fn preview_gone(&mut self, id: usize) {
        if let Some(p) = self.previews.as_mut() {
            p.page.remove_listener(id);
        }
    }

    /// Browser `id` answered (200): its bridge becomes the callee leg, now
    /// facing the caller's device both ways; every other preview ends. Our
    /// SDP for the caller: the bridge's, o= version after the 183's.
    pub async fn preview_answered(&mut self, id: usize, browser_sdp: &[u8]) -> anyhow::Result<Vec<u8>> {
        let engine = self.engine.clone();
        let mut p = self.previews.take().ok_or_else(|| anyhow::anyhow!("no browser previews this call"))?;
        let mut browser = p.page.take_browser(id).ok_or_else(|| anyhow::anyhow!("browser {id} has no bridge on the preview"))?;
        drop(p.page);
        let text = std::str::from_utf8(browser_sdp).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        browser.continue_version(p.to_caller.version());
        let answer = match browser.answer_after_preview(&engine, text) {
            Some(answer) => answer?,
            // It answered without previewing first (the SIP Core card).
            None => browser.sdp_from_browser(&engine, text).await?,
        };
        // The bridge's plain side faced the fan-out: now the caller's device.
        let caller = Sdp::parse(std::str::from_utf8(&p.caller_offer)?).map_err(|e| anyhow::anyhow!("bad SDP: {e}"))?;
        if let Some((rtp, _)) = caller.media_endpoint(0) {
            browser.bridge.set_device_peer(rtp);
        }
        // Its video too, straight from the caller's device from now on.
        if let (Some(_), Some((rtp, _)), Some(rtcp)) = (p.video_pt, caller.media_endpoint(1), page::caller_video_rtcp(&p.caller_offer)) {
            browser.bridge.set_device_video_peer(rtp, rtcp);
        }
        browser.bridge.set_device_signalling_host(self.leg(Leg::A).signalling_host);
        self.forward_device_dtmf(&mut browser, Leg::A);
        self.relays.clear();
        let callee = self.leg_mut(Leg::B);
        callee.media = LegMedia::Browser(browser);
        callee.last_sdp = Some(browser_sdp.to_vec());
        Ok(answer)
    }

    /// A SIP device answered: the previews end, and the caller's next SDP
    /// (the relay's, in the 200) goes on from the 183's o= version.
    pub fn end_previews(&mut self) {
        let Some(p) = self.previews.take() else { return };
        let caller = self.leg_mut(Leg::A);
        caller.origin_version = caller.origin_version.max(p.to_caller.version());
    }
}

#[cfg(test)]
#[path = "previews_tests.rs"]
mod tests;
