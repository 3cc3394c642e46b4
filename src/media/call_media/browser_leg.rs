//! A call leg whose SDP is WebRTC (a browser: ICE, DTLS-SRTP): it gets a
//! str0m bridge instead of a relay side, and each leg is given SDP it can
//! use — WebRTC toward the browser, plain RTP/AVP G.711 toward the device.
//!
//! When the browser offers, its offer is held until the device answers, so
//! the browser's answer names exactly the G.711 law the device chose: no
//! transcoding, whatever order the two sides list codecs in. A browser
//! without that law gets Opus, transcoded by the bridge. A device with no
//! G.711 at all gets the browser's Opus passed through.
//!
//! Video (VP8, H.264) offered by either side gets a video stream too, on
//! the bridge's own plain port pair for it.
//!
//! Between two browsers, two bridges are chained: the plain side of each is
//! the "device" of the other.
use crate::media::sdp::{Direction, MediaKind, Sdp};
use crate::media::webrtc::{str0m_direction, check_browser_sdp, is_webrtc, offered_audio, offered_video, plain_sdp, reverse, same_browser_session, video_section, DeviceCodec, DeviceVideo, VideoCodec, VideoFormat, WebRtcBridge, G711, OPUS_OFFER_PT};
use crate::media::MediaEngine;

pub struct BrowserLeg {
    pub bridge: WebRtcBridge,
    /// The browser's offer, answered once the device has answered.
    browser_offer: Option<String>,
    /// The device's codec, once both sides agreed.
    codec: Option<DeviceCodec>,
    /// We offered to the browser (it is the callee).
    offered_to_browser: bool,
    last_to_browser: Option<Vec<u8>>,
    /// The device's RFC 4733 payload type, once its SDP is known.
    device_te: Option<u8>,
    /// A browser's new offer in the running session, answered once the
    /// device has answered its own re-INVITE.
    browser_reoffer: Option<String>,
    /// We re-offered to the browser for a device's re-INVITE.
    reoffered_to_browser: bool,
    /// The device's video offer (it called the browser).
    device_video: Option<DeviceVideo>,
    /// The video section every SDP toward the device carries once set:
    /// formats (none: refused), our direction, a format for a refusal.
    video_to_device: Option<(Vec<VideoCodec>, Direction, u8)>,
    /// The browser's early answer while it previews the call (door
    /// preview): its bridge holds back the browser's media until its final
    /// answer, from the same session, ends the preview.
    preview: Option<String>,
    /// The device's last offer, one refused section per stream: an answer
    /// to it has as many sections (RFC 3264 §6), those we do not take at
    /// port 0. Empty when the last offer was ours.
    device_offer_streams: Vec<String>,
    session_id: u64,
    version: u64,
}

impl BrowserLeg {
    pub async fn new(engine: &MediaEngine, session_id: u64) -> anyhow::Result<Self> {
        let bridge = engine.create_webrtc_bridge().await?;
        Ok(BrowserLeg { bridge, browser_offer: None, codec: None, offered_to_browser: false, last_to_browser: None, device_te: None, browser_reoffer: None, reoffered_to_browser: false, device_video: None, video_to_device: None, preview: None, device_offer_streams: Vec::new(), session_id, version: 0 })
    }

    /// The browser's SDP, turned into plain SDP for the other side.
    pub async fn sdp_from_browser(&mut self, engine: &MediaEngine, text: &str) -> anyhow::Result<Vec<u8>> {
        if !is_webrtc(text) {
            anyhow::bail!("a browser leg sent SDP without ICE and DTLS-SRTP");
        }
        check_browser_sdp(text).map_err(|e| anyhow::anyhow!("unreadable browser SDP: {e}"))?;
        // The device is told the browser's directions (hold, resume, a camera that only receives).
        let (audio_direction, video_direction) = directions(text);
        let (codecs, te) = match self.codec {
            // The browser answers our re-offer (the device's re-INVITE).
            Some(c) if self.reoffered_to_browser => {
                self.reoffered_to_browser = false;
                self.bridge.browser_answered(text).await?;
                (vec![c], self.device_te)
            }
            // Re-offer (hold, refresh): the device keeps the law it has.
            Some(c) => {
                self.device_offer_streams.clear();
                self.browser_reoffer = Some(text.to_string());
                (vec![c], self.device_te)
            }
            None if self.offered_to_browser => {
                // The browser answers our offer.
                let (codec, video) = self.bridge.browser_answered(text).await?;
                self.codec = Some(codec);
                self.video_to_device = self.device_video.as_ref().map(|d| (video, reverse(d.direction), d.codecs[0].device_pt));
                (vec![codec], self.device_te)
            }
            None => {
                // Offered to the device with RFC 4733, for the browser's SIP INFO key presses.
                self.device_offer_streams.clear();
                self.browser_offer = Some(text.to_string());
                let mut codecs = vec![G711::Pcmu.into(), G711::Pcma.into()];
                if offers_opus(text) {
                    codecs.push(DeviceCodec::Opus(OPUS_OFFER_PT));
                }
                self.video_to_device = browser_video(text).map(|v| {
                    let refused = v.codecs[0].device_pt;
                    (v.codecs, v.direction, refused)
                });
                (codecs, Some(101))
            }
        };
        if let (Some(d), Some((_, direction, _))) = (video_direction, self.video_to_device.as_mut()) {
            *direction = d;
        }
        Ok(self.device_sdp(engine, &codecs, te, audio_direction))
    }

    /// The other side's plain SDP, turned into WebRTC SDP for the browser.
    pub async fn sdp_from_device(&mut self, text: &str) -> anyhow::Result<Vec<u8>> {
        let sdp = Sdp::parse(text).map_err(|e| anyhow::anyhow!("bad SDP: {e}"))?;
        if let Some((rtp, _)) = sdp.media_endpoint(0) {
            self.bridge.set_device_peer(rtp);
        }
        let video = offered_video(&sdp);
        if let Some((rtp, rtcp)) = video.as_ref().and_then(|v| sdp.media_endpoint(v.index)) {
            // Without a=rtcp, RTCP is on the next port (RFC 3550).
            let rtcp = rtcp.unwrap_or_else(|| std::net::SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)));
            self.bridge.set_device_video_peer(rtp, rtcp);
        }
        self.device_te = sdp.telephone_event_pt();
        let te_clock = |pt: u8| sdp.media(0).and_then(|m| m.rtpmap(pt)).map_or(8000, |m| m.clock_rate);
        self.bridge.set_device_telephone_event(self.device_te.map(|pt| (pt, te_clock(pt))));
        if let (Some(_), Some(reoffer)) = (self.codec, self.browser_reoffer.take()) {
            // The device answered the browser's re-INVITE: answer the browser.
            let answer = self.bridge.reanswer_browser(&reoffer).await?.into_bytes();
            self.last_to_browser = Some(answer.clone());
            return Ok(answer);
        }
        if self.codec.is_some() {
            self.device_offer_streams = sdp.refusals_from(0);
            // A re-INVITE from the device (hold, resume, refresh): a new offer
            // in the browser's running session, in the device's directions.
            let audio = sdp.media(0).map_or(Direction::SendRecv, |m| m.direction());
            let video = video.filter(|v| v.index == 1).map(|v| str0m_direction(v.direction));
            let offer = self.bridge.reoffer_browser(str0m_direction(audio), video).await?.into_bytes();
            self.reoffered_to_browser = true;
            self.last_to_browser = Some(offer.clone());
            return Ok(offer);
        }
        let offered = offered_audio(&sdp);
        if let Some(offer) = self.browser_offer.clone() {
            // The device answered the browser's call.
            let first = *offered.first().ok_or_else(|| anyhow::anyhow!("the device answered without PCMU, PCMA or Opus"))?;
            // Its video answer names the browser's own payload types: ours in the offer.
            let video = self.video_to_device.as_ref().and(video.filter(|v| v.index == 1));
            let formats = video.as_ref().map_or(Vec::new(), |v| v.codecs.clone());
            if let Some((to_device, direction, _)) = self.video_to_device.as_mut() {
                *to_device = formats.clone();
                *direction = reverse(video.map_or(Direction::Inactive, |v| v.direction));
            }
            let (answer, codec) = self.bridge.answer_browser(&offer, &[first], &formats).await?;
            self.codec = Some(codec);
            self.last_to_browser = Some(answer.clone().into_bytes());
            return Ok(answer.into_bytes());
        }
        if offered.is_empty() {
            anyhow::bail!("the device offered none of PCMU, PCMA and Opus");
        }
        self.offered_to_browser = true;
        self.device_offer_streams = sdp.refusals_from(0);
        // Video only as the second section (after the audio), where our answer puts it.
        self.device_video = video.filter(|v| v.index == 1);
        let offer = self.bridge.offer_browser(&offered, self.device_video.as_ref()).await?.into_bytes();
        self.last_to_browser = Some(offer.clone());
        Ok(offer)
    }

    /// A ringing browser's early answer (183) to our offer: it previews the
    /// call. The bridge holds back all of the browser's media before its
    /// answer is accepted (the device hears nothing of it); the device gets
    /// our SDP in the browser's directions (a previewing phone receives only).
    pub async fn preview_from_browser(&mut self, engine: &MediaEngine, text: &str) -> anyhow::Result<Vec<u8>> {
        if !self.offered_to_browser || self.codec.is_some() || self.preview.is_some() {
            anyhow::bail!("a preview is the browser's first answer to our offer");
        }
        self.bridge.set_preview(true);
        match self.sdp_from_browser(engine, text).await {
            Ok(sdp) => {
                self.preview = Some(text.to_string());
                Ok(sdp)
            }
            Err(e) => {
                self.bridge.set_preview(false);
                Err(e)
            }
        }
    }

    /// The previewing browser's final answer (200): it must be the same
    /// session as its early answer (another browser's cannot take over the
    /// bridge), now in its new directions; the preview ends and its media
    /// reaches the device. None when the browser was not previewing.
    pub fn answer_after_preview(&mut self, engine: &MediaEngine, text: &str) -> Option<anyhow::Result<Vec<u8>>> {
        let early = self.preview.as_deref()?;
        if !same_browser_session(early, text) {
            return Some(Err(anyhow::anyhow!("the answer comes from another browser session than the preview")));
        }
        let codec = self.codec?;
        self.preview = None;
        let (audio_direction, video_direction) = directions(text);
        if let (Some(d), Some((_, direction, _))) = (video_direction, self.video_to_device.as_mut()) {
            *direction = d;
        }
        self.bridge.set_preview(false);
        Some(Ok(self.device_sdp(engine, &[codec], self.device_te, audio_direction)))
    }

    /// The answer a calling browser already got in a 183: the device's 200
    /// carries the same session, which must not be negotiated again.
    pub fn answer_already_given(&self) -> Option<Vec<u8>> {
        (self.codec.is_some() && self.browser_offer.is_some()).then(|| self.last_to_browser.clone()).flatten()
    }

    /// The device already saw o= version `seen` of this session from
    /// elsewhere (a door preview's fan-out): ours go on after it.
    pub fn continue_version(&mut self, seen: u64) {
        self.version = self.version.max(seen);
    }

    /// The o= version of the last SDP the device got from this bridge.
    pub fn device_sdp_version(&self) -> u64 {
        self.version
    }

    fn device_sdp(&mut self, engine: &MediaEngine, codecs: &[DeviceCodec], te: Option<u8>, direction: Direction) -> Vec<u8> {
        self.version += 1;
        let mut text = plain_sdp(engine.advertise(), self.bridge.device_port(), codecs, te, direction, self.session_id, self.version).to_string();
        if let Some((formats, direction, refused)) = &self.video_to_device {
            // Port 0 when no format is left on both sides.
            text.push_str(&video_section(self.bridge.video_port(), formats, *direction, *refused));
        }
        // Ours: the audio section, and the video's when we carry video.
        let ours = 1 + usize::from(self.video_to_device.is_some());
        // Answering the device: every stream of its offer has a section, in
        // its place; the ones after ours (video we carry none of, a second
        // audio, an application) are refused.
        for refused in self.device_offer_streams.iter().skip(ours) {
            text.push_str(refused);
        }
        text.into_bytes()
    }
}

/// Whether the browser's audio lists Opus (every browser does; checked so a
/// device never picks what the browser cannot take).
fn offers_opus(text: &str) -> bool {
    Sdp::parse(text).is_ok_and(|sdp| offered_audio(&sdp).iter().any(|c| c.opus_pt().is_some()))
}

/// The directions of the browser's audio and (second section) video.
fn directions(text: &str) -> (Direction, Option<Direction>) {
    let Ok(sdp) = Sdp::parse(text) else { return (Direction::SendRecv, None) };
    let audio = sdp.media(0).map_or(Direction::SendRecv, |m| m.direction());
    let video = sdp.media(1).filter(|m| m.kind() == MediaKind::Video).map(|m| m.direction());
    (audio, video)
}

/// The browser's video, as offered to the device: its first VP8 and its
/// first H.264 in packetization mode 1 (Chrome lists a dozen profiles),
/// under the browser's own payload types. Only as the second section.
fn browser_video(text: &str) -> Option<DeviceVideo> {
    let mut video = offered_video(&Sdp::parse(text).ok()?).filter(|v| v.index == 1)?;
    let vp8 = video.codecs.iter().find(|c| c.format == VideoFormat::Vp8).cloned();
    let h264 = video.codecs.iter().find(|c| c.format == VideoFormat::H264 && c.h264_params().0).cloned();
    video.codecs = vp8.into_iter().chain(h264).collect();
    (!video.codecs.is_empty()).then_some(video)
}
