//! A call's media session: the media plane as one call sees it. One relay
//! per SDP m-line, and SDP carried from one leg to the other with our relay's
//! address put in; a browser leg gets a WebRTC bridge (`browser_leg.rs`).
//! No SIP types: the call driver (`sip/b2bua/`) hands in SDP bytes, legs and
//! addresses.
//!
//! Offers and answers take the same path: the SDP a leg sends tells us where
//! that leg's device listens (a first guess; the relay latches onto the real
//! source), and the copy the other leg receives names our relay ports.
mod browser_leg;
mod srtp_leg;
mod event_types;
mod key_presses;
mod previews;

pub use browser_leg::BrowserLeg;
pub use previews::MAX_PREVIEWS;

use crate::media::sdp::Sdp;
use crate::media::{Leg, MediaEngine, Relay};
use std::net::IpAddr;

/// What carries one leg's media.
#[derive(Default)]
enum LegMedia {
    /// The relay (a SIP device, or nothing negotiated yet).
    #[default]
    Relayed,
    /// A browser on its own WebRTC bridge: no relay on its side, the other
    /// leg's device talks to the bridge.
    Browser(BrowserLeg),
    /// A browser *behind* the relay (click-to-dial, where our own plain offer
    /// came first): its bridge turns the SDP crossing that leg.
    BrowserBehindRelay(BrowserLeg),
}

/// Everything the session keeps per leg.
#[derive(Default)]
struct LegState {
    media: LegMedia,
    /// The last SDP the leg's device sent (to re-offer on a transfer).
    last_sdp: Option<Vec<u8>>,
    /// Whether that SDP put its first stream on hold.
    held: bool,
    /// o= version of the SDP this leg receives, so its device sees one stable session.
    origin_version: u64,
    /// The telephone-event payload type its SDP named (first stream).
    event_pt: Option<u8>,
    /// Its device takes key presses as SIP INFO, not RFC 4733.
    takes_info: bool,
    /// The host its device signals from, which may send its media besides
    /// the host its SDP names (the relay latches onto no other).
    signalling_host: Option<IpAddr>,
    /// SDES-SRTP toward its device (a trunk with `srtp:`).
    srtp: srtp_leg::SrtpLegState,
}

impl LegState {
    fn browser(&self) -> Option<&BrowserLeg> {
        match &self.media {
            LegMedia::Browser(b) => Some(b),
            _ => None,
        }
    }
    fn browser_mut(&mut self) -> Option<&mut BrowserLeg> {
        match &mut self.media {
            LegMedia::Browser(b) => Some(b),
            _ => None,
        }
    }
    fn behind_relay_mut(&mut self) -> Option<&mut BrowserLeg> {
        match &mut self.media {
            LegMedia::BrowserBehindRelay(b) => Some(b),
            _ => None,
        }
    }
}

/// What a transfer target is offered (`CallMedia::transfer_offer`).
pub struct TransferOffer {
    pub sdp: Vec<u8>,
    /// The staying device talked to the leaving browser's bridge, now gone:
    /// re-INVITE it toward the relay once the target has answered.
    pub move_staying: bool,
}

pub struct CallMedia {
    engine: MediaEngine,
    relays: Vec<Option<Relay>>,
    /// Per leg (A, B).
    legs: [LegState; 2],
    /// Key presses (RFC 4733) seen on the first stream, until taken.
    dtmf: Option<tokio::sync::mpsc::UnboundedReceiver<(Leg, char)>>,
    session_id: u64,
    /// The leg expected to answer with WebRTC (a browser callee), set before
    /// the caller's plain offer is translated.
    expect_browser: Option<Leg>,
    /// Where the bridges' RFC 4733 key presses go: the `dtmf` stream.
    browser_dtmf: Option<tokio::sync::mpsc::UnboundedSender<(Leg, char)>>,
    /// A callee that rings both browsers and SIP devices: the bridge its
    /// browser forks were offered, kept beside the relays its plain forks
    /// were offered until one kind answers (`settle_callee`).
    browser_forks: Option<BrowserLeg>,
    /// `security.max_media_per_call`: relays (m= lines with a port) one call may hold.
    max_media: usize,
    /// Several ringing browsers previewing the caller (`previews.rs`).
    previews: Option<previews::Previews>,
}

impl CallMedia {
    pub fn new(engine: MediaEngine, max_media: usize) -> Self {
        CallMedia {
            max_media,
            engine,
            relays: Vec::new(),
            legs: Default::default(),
            dtmf: None,
            session_id: rand::random::<u32>() as u64,
            expect_browser: None,
            browser_dtmf: None,
            browser_forks: None,
            previews: None,
        }
    }

    fn leg(&self, leg: Leg) -> &LegState {
        &self.legs[leg_index(leg)]
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut LegState {
        &mut self.legs[leg_index(leg)]
    }

    /// SDP that `from` sent, rewritten for the other leg. Creates relays for
    /// new m-lines; a port-0 m-line stays disabled.
    pub async fn translate(&mut self, from: Leg, sdp_text: &[u8]) -> anyhow::Result<Vec<u8>> {
        let to = other(from);
        let text = std::str::from_utf8(sdp_text).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        let engine = self.engine.clone();
        let plain = match self.legs[leg_index(from)].behind_relay_mut() {
            Some(a) if crate::media::webrtc::is_webrtc(text) => Some(a.sdp_from_browser(&engine, text).await?),
            Some(_) => {
                // A SIP device of that extension answered, not its browser.
                self.leg_mut(from).media = LegMedia::Relayed;
                None
            }
            None => None,
        };
        let out = self.translate_plain(from, plain.as_deref().unwrap_or(sdp_text)).await?;
        match self.legs[leg_index(to)].behind_relay_mut() {
            Some(a) => a.sdp_from_device(std::str::from_utf8(&out)?).await,
            None => Ok(out),
        }
    }

    /// A browser behind the relay on `leg`: `plain` (our relay's SDP toward
    /// that leg) becomes the WebRTC SDP for it, and from now on SDP crossing
    /// that leg is turned both ways. For click-to-dial, where the relay
    /// exists before anyone answered.
    pub async fn adapt_for_browser(&mut self, leg: Leg, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut browser = BrowserLeg::new(&self.engine, self.session_id).await?;
        // The relay reports the device's key presses; the bridge's would repeat them.
        drop(browser.bridge.take_dtmf_events());
        let webrtc = browser.sdp_from_device(std::str::from_utf8(plain)?).await?;
        self.leg_mut(leg).media = LegMedia::BrowserBehindRelay(browser);
        Ok(webrtc)
    }

    async fn translate_plain(&mut self, from: Leg, sdp_text: &[u8]) -> anyhow::Result<Vec<u8>> {
        let text = std::str::from_utf8(sdp_text).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        if let Some(out) = self.translate_browser(from, text).await? {
            self.leg_mut(from).last_sdp = Some(sdp_text.to_vec());
            return Ok(out);
        }
        let mut sdp = Sdp::parse(text).map_err(|e| anyhow::anyhow!("bad SDP: {e}"))?;
        let to = other(from);
        // The other side's last SDP: the telephone-event number it wants.
        let peer_sdp = self.leg(to).last_sdp.as_deref().and_then(|b| std::str::from_utf8(b).ok()).and_then(|t| Sdp::parse(t).ok());
        let mut ports = Vec::with_capacity(sdp.media_count());
        for idx in 0..sdp.media_count() {
            let endpoint = sdp.media_endpoint(idx);
            if endpoint.is_none() || sdp.media_port(idx) == 0 {
                ports.push(None);
                continue;
            }
            while self.relays.len() <= idx {
                self.relays.push(None);
            }
            if self.relays[idx].is_none() {
                let held = self.relays.iter().flatten().count();
                if held >= self.max_media {
                    anyhow::bail!("more than {} media streams in one call (security.max_media_per_call)", self.max_media);
                }
                self.relays[idx] = Some(self.new_relay().await?);
            }
            let relay = self.relays[idx].as_ref().expect("just created");
            let event_pt = sdp.media(idx).and_then(|m| m.telephone_event_pt());
            if idx == 0 {
                self.legs[leg_index(from)].event_pt = event_pt;
            }
            if let Some(sent) = sdp.media(idx) {
                event_types::set_event_types(relay, from, sent, peer_sdp.as_ref().and_then(|p| p.media(idx)));
            }
            if let Some((rtp, rtcp)) = endpoint {
                relay.set_peer(from, rtp, rtcp);
            }
            relay.set_timeout_enabled(!sdp.is_hold(idx));
            ports.push(Some(relay.local_port(to)));
        }
        if self.leg(from).srtp.is_on() {
            self.legs[leg_index(from)].srtp.device_sent(from, &mut sdp, &self.relays)?;
        }
        if self.leg(to).srtp.is_on() {
            self.legs[leg_index(to)].srtp.toward_device(&mut sdp, &ports);
        }
        let sender = self.leg_mut(from);
        sender.held = sdp.media_count() > 0 && sdp.is_hold(0);
        sender.last_sdp = Some(sdp_text.to_vec());
        let version = self.next_origin_version(to);
        sdp.set_origin("ha-pbx", self.session_id, version, self.engine.advertise());
        sdp.rewrite_for_relay(self.engine.advertise(), &ports);
        Ok(sdp.to_string().into_bytes())
    }

    /// A ringing browser callee's early answer (183): it previews the
    /// caller's media, receive-only (door preview). Our SDP for the caller.
    /// With SIP devices ringing beside it, the browser's bridge is the one
    /// its forks were offered (`settle_callee` keeps it if it answers).
    pub async fn preview_answer(&mut self, from: Leg, sdp_text: &[u8]) -> anyhow::Result<Vec<u8>> {
        let text = std::str::from_utf8(sdp_text).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        let engine = self.engine.clone();
        let forks = self.browser_forks.as_mut().filter(|_| from == Leg::B);
        let browser = match forks {
            Some(b) => b,
            None => self.legs[leg_index(from)].browser_mut().ok_or_else(|| anyhow::anyhow!("only a browser on its own bridge previews"))?,
        };
        let out = browser.preview_from_browser(&engine, text).await?;
        self.leg_mut(from).last_sdp = Some(sdp_text.to_vec());
        Ok(out)
    }

    /// The callee's final answer to the call's first offer. After a 183 with
    /// SDP, a calling browser already has its answer: the 200 repeats it. A
    /// previewing browser's answer ends its preview.
    pub async fn translate_final_answer(&mut self, from: Leg, sdp_text: &[u8]) -> anyhow::Result<Vec<u8>> {
        let engine = self.engine.clone();
        let text = std::str::from_utf8(sdp_text).unwrap_or_default();
        if let Some(answer) = self.legs[leg_index(from)].browser_mut().and_then(|b| b.answer_after_preview(&engine, text)) {
            self.leg_mut(from).last_sdp = Some(sdp_text.to_vec());
            return answer;
        }
        if let Some(answer) = self.leg(other(from)).browser().and_then(BrowserLeg::answer_already_given) {
            self.leg_mut(from).last_sdp = Some(sdp_text.to_vec());
            return Ok(answer);
        }
        self.translate(from, sdp_text).await
    }

    /// The callee `leg` is a browser: the caller's plain offer becomes a
    /// WebRTC offer for it.
    pub fn expect_browser(&mut self, leg: Leg) {
        self.expect_browser = Some(leg);
    }

    /// A plain caller's offer for the browsers among a callee's devices, made
    /// after `translate` gave the plain one for the others (an extension on a
    /// desk phone and in the dashboard). Both media paths wait ready.
    pub async fn offer_for_browser_forks(&mut self, caller_offer: &[u8]) -> anyhow::Result<Vec<u8>> {
        let text = std::str::from_utf8(caller_offer).map_err(|_| anyhow::anyhow!("SDP is not UTF-8"))?;
        if self.legs.iter().any(|l| l.browser().is_some()) {
            anyhow::bail!("a browser caller rings browsers only");
        }
        let mut browser = BrowserLeg::new(&self.engine, self.session_id).await?;
        self.forward_device_dtmf(&mut browser, Leg::A);
        browser.bridge.set_device_signalling_host(self.leg(Leg::A).signalling_host);
        let offer = browser.sdp_from_device(text).await?;
        self.browser_forks = Some(browser);
        Ok(offer)
    }

    /// Whether the callee's devices were offered both kinds of media and none
    /// has answered yet.
    pub fn callee_undecided(&self) -> bool {
        self.browser_forks.is_some()
    }

    /// The callee answered from a browser or not: the other media path goes.
    /// A caller that got the bridge's SDP in a preview's 183 and now gets
    /// the relay's: its o= version goes on from the bridge's.
    pub fn settle_callee(&mut self, browser: bool) {
        let Some(bridge) = self.browser_forks.take() else { return };
        if browser {
            self.relays.clear();
            self.leg_mut(Leg::B).media = LegMedia::Browser(bridge);
        } else {
            let seen = bridge.device_sdp_version();
            let caller = self.leg_mut(Leg::A);
            caller.origin_version = caller.origin_version.max(seen);
        }
    }

    /// The callee rang browsers and now gets a plain device instead (the AI
    /// agent): its bridge goes and the caller's last SDP is offered afresh.
    pub async fn callee_plain_offer(&mut self, caller: Leg) -> anyhow::Result<Vec<u8>> {
        let callee = other(caller);
        if self.leg(callee).browser().is_some() {
            self.leg_mut(callee).media = LegMedia::Relayed;
        }
        self.expect_browser = None;
        let sdp = self.leg(caller).last_sdp.clone().ok_or_else(|| anyhow::anyhow!("the caller sent no SDP"))?;
        self.translate(caller, &sdp).await
    }

    /// Some(SDP) when a browser is (or becomes) one of the legs: the
    /// sender's bridge turns its WebRTC SDP into plain SDP, the receiver's
    /// bridge turns plain SDP into WebRTC SDP.
    async fn translate_browser(&mut self, from: Leg, text: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let to = other(from);
        let from_browser = self.leg(from).browser().is_some() || crate::media::webrtc::is_webrtc(text);
        let to_browser = self.leg(to).browser().is_some() || self.expect_browser == Some(to);
        if !from_browser && !to_browser {
            return Ok(None);
        }
        if self.legs.iter().any(|l| l.srtp.mode() == crate::config::SrtpMode::Mandatory) {
            anyhow::bail!("a browser's media goes straight to the trunk, which has srtp: mandatory (SRTP needs the relay)");
        }
        if !self.relays.is_empty() {
            anyhow::bail!("a browser joined a call already relayed as plain RTP");
        }
        for (leg, is_browser) in [(from, from_browser), (to, to_browser)] {
            if is_browser && self.leg(leg).browser().is_none() {
                let mut browser = BrowserLeg::new(&self.engine, self.session_id).await?;
                self.forward_device_dtmf(&mut browser, other(leg));
                browser.bridge.set_device_signalling_host(self.leg(other(leg)).signalling_host);
                self.leg_mut(leg).media = LegMedia::Browser(browser);
            }
        }
        let engine = self.engine.clone();
        let mut sdp = text.as_bytes().to_vec();
        if let Some(b) = self.legs[leg_index(from)].browser_mut() {
            sdp = b.sdp_from_browser(&engine, text).await?;
        }
        if let Some(b) = self.legs[leg_index(to)].browser_mut() {
            sdp = b.sdp_from_device(std::str::from_utf8(&sdp)?).await?;
        }
        Ok(Some(sdp))
    }

    /// Whether `leg` is a browser (its media goes through a WebRTC bridge).
    /// A browser leg on its own bridge (no relay on its side: the device
    /// talks to the bridge), so the media path cannot be re-pointed.
    pub fn has_own_bridge(&self) -> bool {
        self.legs.iter().any(|l| l.browser().is_some()) || self.browser_forks.is_some()
    }

    /// Whether `leaving` may leave by a blind transfer, the other leg
    /// staying: always on relays; a browser on its own bridge may leave
    /// (the device facing its bridge is moved onto a relay), but a device
    /// cannot leave a browser that stays on its bridge.
    pub fn may_leave(&self, leaving: Leg) -> bool {
        if self.browser_forks.is_some() {
            return false;
        }
        self.leg(other(leaving)).browser().is_none()
    }

    /// The offer for a transfer target: `from`'s last SDP carried anew
    /// through the relay. A browser of `from` behind the relay keeps its
    /// bridge; the bridge of the party that left (the other leg) goes. When
    /// that bridge was the leaving browser's own, `from`'s device talks to
    /// a port that is gone: `move_staying` says it must be re-INVITEd
    /// toward the relay (`translate` of the target's answer is that offer).
    pub async fn transfer_offer(&mut self, from: Leg) -> anyhow::Result<TransferOffer> {
        if !self.may_leave(other(from)) {
            anyhow::bail!("the staying party is a browser on its own WebRTC bridge");
        }
        let move_staying = match &self.leg(other(from)).media {
            LegMedia::Browser(b) => {
                // The staying device saw the bridge's SDP versions and its
                // audio stream: ours go on from there (baresip drops a
                // stream whose numbers jump back for good).
                let seen = b.device_sdp_version();
                let stream = b.bridge.device_stream().await.ok().flatten();
                let staying = self.leg_mut(from);
                staying.origin_version = staying.origin_version.max(seen);
                self.expect_browser = None;
                Some(stream)
            }
            _ => None,
        };
        // The leaving party's bridge (its own, or behind the relay) goes.
        self.leg_mut(other(from)).media = LegMedia::Relayed;
        let sdp = self.leg(from).last_sdp.clone().ok_or_else(|| anyhow::anyhow!("the remaining party sent no SDP"))?;
        let sdp = self.translate_plain(from, &sdp).await?;
        if let (Some(Some(stream)), Some(Some(relay))) = (move_staying, self.relays.first()) {
            relay.continue_stream(from, stream);
        }
        Ok(TransferOffer { sdp, move_staying: move_staying.is_some() })
    }

    /// An offer of the media the call has now toward `to`'s device (it sent
    /// a re-INVITE without SDP): the other leg's last SDP carried anew
    /// through the relay, the same ports, a new o= version.
    pub async fn offer_again(&mut self, to: Leg) -> anyhow::Result<Vec<u8>> {
        let from = other(to);
        let sdp = self.leg(from).last_sdp.clone().ok_or_else(|| anyhow::anyhow!("the other party sent no SDP"))?;
        self.translate_plain(from, &sdp).await
    }

    pub fn is_browser(&self, leg: Leg) -> bool {
        !matches!(self.leg(leg).media, LegMedia::Relayed)
    }

    /// Speak to `leg`'s device alone: `pcm` (8 kHz) played in place of the
    /// other side's audio, in the first G.711 format its last SDP listed.
    /// How long it plays; None (nothing sent) for a browser leg, a device
    /// without G.711, or no relay.
    pub fn play_to(&self, leg: Leg, pcm: &[i16]) -> Option<std::time::Duration> {
        use crate::media::audio::g711::G711;
        let state = self.leg(leg);
        if !matches!(state.media, LegMedia::Relayed) || pcm.is_empty() {
            return None;
        }
        let sdp = Sdp::parse(std::str::from_utf8(state.last_sdp.as_deref()?).ok()?).ok()?;
        let law = sdp.media(0)?.payload_types().into_iter().find_map(G711::from_payload_type)?;
        let relay = self.relays.first().and_then(Option::as_ref)?;
        let frames: Vec<Vec<u8>> = pcm
            .chunks(160)
            .map(|c| {
                let mut out = Vec::with_capacity(160);
                law.encode(c, &mut out);
                out.resize(160, law.encode_one(0));
                out
            })
            .take(crate::media::relay::MAX_CLIP_FRAMES)
            .collect();
        let playing = crate::media::relay::CLIP_FRAME * frames.len() as u32;
        relay.play(leg, law.payload_type(), frames);
        Some(playing)
    }

    /// On: nothing `from`'s device says reaches the other side (every
    /// stream's RTP), e.g. a parker's microphone while its leg ends.
    pub fn mute_from(&self, from: Leg, on: bool) {
        self.relays.iter().flatten().for_each(|r| r.set_muted(from, on));
    }

    /// The host `leg`'s device signals from (a new device on that leg after
    /// a transfer replaces it): its media may come from there.
    pub fn set_signalling_host(&mut self, leg: Leg, host: IpAddr) {
        self.leg_mut(leg).signalling_host = Some(host);
        for relay in self.relays.iter().flatten() {
            relay.set_signalling_host(leg, Some(host));
        }
        // The bridges whose plain side faces that leg's device.
        let forks = self.browser_forks.as_ref().filter(|_| leg == Leg::A);
        for browser in self.leg(other(leg)).browser().into_iter().chain(forks) {
            browser.bridge.set_device_signalling_host(Some(host));
        }
    }

    async fn new_relay(&mut self) -> anyhow::Result<Relay> {
        let mut relay = self.engine.create_relay().await?;
        for leg in [Leg::A, Leg::B] {
            relay.set_hold_back_dtmf(leg, self.leg(leg).takes_info);
            relay.set_signalling_host(leg, self.leg(leg).signalling_host);
        }
        self.take_relay_dtmf(&mut relay);
        Ok(relay)
    }

    /// Whether the last SDP from `leg` asked for hold (sendonly, inactive, c=0.0.0.0).
    pub fn is_held_by(&self, leg: Leg) -> bool {
        self.leg(leg).held
    }

    /// An offer of our own toward `to` (click-to-dial): G.711 on a new relay.
    pub async fn offer(&mut self, to: Leg) -> anyhow::Result<Vec<u8>> {
        if self.relays.is_empty() {
            let relay = self.new_relay().await?;
            relay.set_dtmf_payload_type(to, Some(101));
            self.relays.push(Some(relay));
        }
        let port = self.relays[0].as_ref().expect("created above").local_port(to);
        let version = self.next_origin_version(to);
        let mut sdp = crate::media::sdp::g711_offer(self.engine.advertise(), port, self.session_id, version);
        if self.leg(to).srtp.is_on() {
            self.legs[leg_index(to)].srtp.toward_device(&mut sdp, &[Some(port)]);
        }
        Ok(sdp.to_string().into_bytes())
    }

    /// The o= version for the next SDP toward `to`.
    fn next_origin_version(&mut self, to: Leg) -> u64 {
        let leg = self.leg_mut(to);
        leg.origin_version += 1;
        leg.origin_version
    }

    /// Resolves when every relay of the call has seen no media for the timeout.
    pub async fn timed_out(&self) {
        match (self.legs[0].browser(), self.legs[1].browser()) {
            (Some(a), Some(b)) => {
                return tokio::select! { _ = a.bridge.timed_out() => {}, _ = b.bridge.timed_out() => {} };
            }
            (Some(one), None) | (None, Some(one)) => return one.bridge.timed_out().await,
            (None, None) => {}
        }
        let behind_relay = self.legs.iter().find_map(|l| match &l.media {
            LegMedia::BrowserBehindRelay(b) => Some(b),
            _ => None,
        });
        if let Some(a) = behind_relay {
            // Its bridge notices a closed tab; the relay goes on carrying media.
            let relays: Vec<&Relay> = self.relays.iter().flatten().collect();
            return match relays.first() {
                Some(r) => tokio::select! { _ = a.bridge.timed_out() => {}, _ = r.timed_out() => {} },
                None => a.bridge.timed_out().await,
            };
        }
        let relays: Vec<&Relay> = self.relays.iter().flatten().collect();
        if relays.is_empty() {
            return std::future::pending().await;
        }
        // The first m-line is audio in practice: video may legitimately pause.
        relays[0].timed_out().await
    }
}

fn other(leg: Leg) -> Leg {
    match leg {
        Leg::A => Leg::B,
        Leg::B => Leg::A,
    }
}

fn leg_index(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}
