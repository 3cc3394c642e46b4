//! Offer/answer with the browser: one str0m `Rtc` per bridge, made when the
//! first SDP is exchanged, in RTP mode (packets cross as they are) with
//! ICE-lite and our one host candidate. What it decides (how audio crosses,
//! which video formats map to which) goes to the bridge core as
//! [`Agreed`]; the core owns the media paths.
//!
//! Sans-IO: time comes in as an argument; nothing here sends.
use super::codec::{DeviceCodec, G711};
use super::media_path::MediaPath;
use super::video::{VideoCodec, VideoFormat};
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, FormatParams, PayloadParams};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc, RtcConfig};

/// Browser-side payload types for the device's video formats, in its order
/// (clear of str0m's audio numbers: 0, 8, 111).
const FIRST_VIDEO_PT: u8 = 96;

/// What the browser side may use: the device's laws (passthrough) or Opus
/// (passed through to an Opus device, else transcoded to its first law).
#[derive(Clone, Copy, PartialEq, Eq)]
enum BrowserCodecs {
    G711,
    Opus,
}

/// What one completed offer/answer settled.
pub(super) struct Agreed {
    pub(super) path: MediaPath,
    /// (device pt, browser pt) per video format both sides took; None: no video.
    pub(super) video: Option<Vec<(u8, u8)>>,
}

pub(super) struct Negotiation {
    /// Our ICE host candidate: the advertised address and the browser port.
    candidate: SocketAddr,
    pub(super) rtc: Option<Rtc>,
    pending: Option<SdpPendingOffer>,
    /// The audio section.
    pub(super) mid: Option<Mid>,
    /// The video section, when there is one.
    pub(super) video_mid: Option<Mid>,
    /// The device's codecs we offered the browser, for reading its answer.
    offered: Vec<DeviceCodec>,
    /// The device's video formats we offered (or answered) the browser.
    pub(super) offered_video: Vec<VideoCodec>,
    /// The last answer we gave the browser: a 183 then a 200 carry the same one.
    answer: Option<(String, DeviceCodec)>,
}

impl Negotiation {
    pub(super) fn new(candidate: SocketAddr) -> Self {
        Negotiation { candidate, rtc: None, pending: None, mid: None, video_mid: None, offered: Vec::new(), offered_video: Vec::new(), answer: None }
    }

    pub(super) fn candidate(&self) -> SocketAddr {
        self.candidate
    }

    /// An offer of ours waits for the browser's answer.
    pub(super) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn new_rtc(&self, now: Instant, codecs: &[DeviceCodec], browser: BrowserCodecs, video: &[VideoCodec]) -> Result<Rtc, String> {
        // RTP mode: packets cross as they are; audio is written packet by packet too.
        let mut config = RtcConfig::new().clear_codecs().set_ice_lite(true).set_rtp_mode(true);
        if let Some(cert) = dtls_certificate() {
            config = config.set_dtls_cert(cert);
        }
        if browser == BrowserCodecs::Opus {
            config = config.enable_opus(true, false);
        } else {
            for law in codecs.iter().filter_map(|c| c.law()) {
                config = match law {
                    G711::Pcmu => config.enable_pcmu(true, false),
                    G711::Pcma => config.enable_pcma(true, false),
                };
            }
        }
        for (i, v) in video.iter().enumerate() {
            let pt = Pt::from(FIRST_VIDEO_PT + i as u8);
            match v.format {
                VideoFormat::Vp8 => config.codec_config().add_config(pt, None, Codec::Vp8, Frequency::NINETY_KHZ, None, FormatParams::default()),
                VideoFormat::H264 => {
                    let (mode1, profile) = v.h264_params();
                    config.codec_config().add_h264(pt, None, mode1, profile)
                }
            }
        }
        let mut rtc = config.build(now);
        let host = Candidate::host(self.candidate, "udp").map_err(|e| format!("host candidate: {e}"))?;
        rtc.add_local_candidate(host);
        Ok(rtc)
    }

    /// The browser offered: answer with the first of `codecs` it accepts, or
    /// with Opus (transcoded to the first law) when it accepts none. Asked
    /// again, the same answer and no new agreement (183 then 200).
    pub(super) fn answer(&mut self, now: Instant, offer: &str, codecs: &[DeviceCodec], video: Vec<VideoCodec>) -> Result<(String, DeviceCodec, Option<Agreed>), String> {
        if let Some((sdp, codec)) = &self.answer {
            return Ok((sdp.clone(), *codec, None));
        }
        self.offered = codecs.to_vec();
        // G.711 passthrough when the browser has the device's law; Opus only if not.
        for browser in [BrowserCodecs::G711, BrowserCodecs::Opus] {
            // Parsed again for each try: str0m takes the offer by value and it
            // is not Clone. An offer that does not parse fails the first try.
            let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| format!("browser SDP: {e}"))?;
            let mut rtc = self.new_rtc(now, codecs, browser, &video)?;
            let Ok(answer) = rtc.sdp_api().accept_offer(parsed) else { continue };
            // The first accepted section of each kind: the audio, and the video if the device took it.
            let accepted = |kind: MediaKind| {
                (answer.media_lines.iter().filter(|m| !m.disabled && !m.pts.is_empty()).map(|m| m.mid()))
                    .find(|mid| rtc.media(*mid).is_some_and(|m| m.kind() == kind))
            };
            let (Some(mid), video_mid) = (accepted(MediaKind::Audio), accepted(MediaKind::Video)) else { continue };
            let Some(path) = negotiated(&rtc, mid, codecs) else { continue };
            let codec = path.device_codec();
            let video_map = video_mid.and_then(|v| video_map(&rtc, v, &video));
            self.offered_video = video;
            (self.rtc, self.mid, self.video_mid) = (Some(rtc), Some(mid), video_mid);
            let sdp = answer.to_sdp_string();
            self.answer = Some((sdp.clone(), codec));
            return Ok((sdp, codec, Some(Agreed { path, video: video_map })));
        }
        Err("the browser offered neither the device's G.711 law nor Opus".to_string())
    }

    /// An offer to the browser with the device's `codecs`, and its `video`
    /// formats in its direction when it offered video.
    pub(super) fn offer(&mut self, now: Instant, codecs: &[DeviceCodec], video: Option<(Vec<VideoCodec>, Direction)>) -> Result<String, String> {
        let (video, video_dir) = video.unwrap_or((Vec::new(), Direction::Inactive));
        // The device's laws only. Every WebRTC browser has G.711 (RFC 7874), and
        // with Opus in our offer Chromium's PCMU it sends measured worse (PESQ
        // 3.77 against 4.04): transcoding is for browsers whose own offer lacks G.711.
        // Opus only for a device that has nothing else.
        let kind = if codecs.iter().any(|c| c.law().is_some()) { BrowserCodecs::G711 } else { BrowserCodecs::Opus };
        let mut rtc = self.new_rtc(now, codecs, kind, &video)?;
        self.offered = codecs.to_vec();
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        // BUNDLEd with the audio, in the device's direction: a doorbell camera sends only.
        let video_mid = (!video.is_empty()).then(|| change.add_media(MediaKind::Video, video_dir, None, None, None));
        let (offer, pending) = change.apply().ok_or("nothing to offer")?;
        self.offered_video = video;
        (self.rtc, self.mid, self.video_mid, self.pending) = (Some(rtc), Some(mid), video_mid, Some(pending));
        Ok(offer.to_sdp_string())
    }

    /// The browser answered our offer (or re-offer): what it agreed to.
    pub(super) fn answered(&mut self, answer: &str) -> Result<Agreed, String> {
        let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| format!("browser SDP: {e}"))?;
        let pending = self.pending.take().ok_or("no offer is waiting for an answer")?;
        let rtc = self.rtc.as_mut().ok_or("no offer was made")?;
        rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("browser answer refused: {e}"))?;
        let rtc = self.rtc.as_ref().ok_or("no offer was made")?;
        let path = self.mid.and_then(|mid| negotiated(rtc, mid, &self.offered));
        let path = path.ok_or("the browser accepted none of the device's codecs")?;
        let video = self.video_mid.and_then(|mid| video_map(rtc, mid, &self.offered_video));
        Ok(Agreed { path, video })
    }

    /// Same session, same law: str0m answers the new offer on the running
    /// connection, so ICE and DTLS carry on.
    pub(super) fn reanswer(&mut self, offer: &str) -> Result<String, String> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("browser SDP: {e}"))?;
        let rtc = self.rtc.as_mut().ok_or("no session to renegotiate")?;
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| format!("browser re-offer refused: {e}"))?;
        Ok(answer.to_sdp_string())
    }

    /// The device's direction becomes ours toward the browser (we send what
    /// it sends); `video` only for a stream both sides took. Nothing changed
    /// (a session refresh): an ICE restart keeps the offer valid and costs
    /// the browser one round of checks.
    pub(super) fn reoffer(&mut self, direction: Direction, video: Option<Direction>) -> Result<String, String> {
        let mid = self.mid.ok_or("no session to renegotiate")?;
        let rtc = self.rtc.as_mut().ok_or("no session to renegotiate")?;
        let mut change = rtc.sdp_api();
        change.set_direction(mid, direction);
        if let (Some(video_mid), Some(d)) = (self.video_mid, video) {
            change.set_direction(video_mid, d);
        }
        if !change.has_changes() {
            change.ice_restart(true);
        }
        let (offer, pending) = change.apply().ok_or("nothing to offer")?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }
}

/// (device pt, browser pt) for each of the device's `formats` the browser
/// also lists in section `mid`; None when there is none.
fn video_map(rtc: &Rtc, mid: Mid, formats: &[VideoCodec]) -> Option<Vec<(u8, u8)>> {
    let remote = rtc.media(mid)?.remote_pts();
    let map: Vec<(u8, u8)> = formats
        .iter()
        .filter_map(|v| {
            let params = rtc.codec_config().params().iter().filter(|p| remote.contains(&p.pt()));
            let same = |p: &&PayloadParams| {
                let spec = p.spec();
                match v.format {
                    VideoFormat::Vp8 => spec.codec == Codec::Vp8,
                    VideoFormat::H264 => {
                        let (mode1, profile) = v.h264_params();
                        spec.codec == Codec::H264 && (spec.format.packetization_mode == Some(1)) == mode1 && spec.format.profile_level_id == Some(profile)
                    }
                }
            };
            params.clone().find(same).map(|p| (v.device_pt, *p.pt()))
        })
        .collect();
    (!map.is_empty()).then_some(map)
}

/// How audio crosses, from what the browser agreed to: the first of its
/// payload types that is one of the device's laws, else Opus, passed
/// through to a device that has it and transcoded to the first law if not.
fn negotiated(rtc: &Rtc, mid: Mid, codecs: &[DeviceCodec]) -> Option<MediaPath> {
    let pts = rtc.media(mid)?.remote_pts();
    let laws: Vec<G711> = codecs.iter().filter_map(|c| c.law()).collect();
    if let Some(law) = pts.iter().find_map(|pt| G711::from_payload_type(**pt).filter(|l| laws.contains(l))) {
        return Some(MediaPath::Passthrough(law));
    }
    let opus = *rtc.codec_config().find(|p| p.spec().codec == Codec::Opus && pts.contains(&p.pt()))?.pt();
    if let Some(device_pt) = codecs.iter().find_map(|c| c.opus_pt()) {
        tracing::debug!(device_pt, browser_pt = opus, "webrtc bridge passes Opus through");
        return Some(MediaPath::Opus { device_pt, browser_pt: opus });
    }
    match MediaPath::transcode(*laws.first()?, opus) {
        Ok(path) => {
            tracing::debug!(law = ?laws[0], "webrtc bridge transcodes Opus");
            Some(path)
        }
        Err(e) => {
            tracing::warn!(error = %e, "opus transcoder unavailable");
            None
        }
    }
}

/// The DTLS certificate every browser session of this process presents: made
/// once (a key pair takes milliseconds) and shared, as WebRTC servers do. Each
/// handshake still agrees its own keys (ECDHE), so sharing the identity costs
/// no secrecy; browsers check it against the fingerprint in our answer. None
/// if the crypto provider cannot make one (str0m then makes its own per call).
fn dtls_certificate() -> Option<str0m::crypto::dtls::DtlsCert> {
    static CERT: std::sync::OnceLock<Option<str0m::crypto::dtls::DtlsCert>> = std::sync::OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}
