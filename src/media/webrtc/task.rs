//! The async shell around one str0m `Rtc` (sans-IO): it owns the browser's
//! UDP socket (ICE, DTLS, SRTP all on one port: rtcp-mux, BUNDLE) and the
//! plain RTP/RTCP pair toward the SIP device, feeds str0m packets and time,
//! and carries audio across: G.711 unchanged when both sides share a law,
//! else Opus toward the browser transcoded (media_path.rs). Video, when the
//! device offers it, crosses as RTP with only its payload type changed
//! (video_path.rs): str0m runs in RTP mode, so it never re-packetizes.
//!
//! str0m's contract: after every mutation (input, write, SDP change) drain
//! `poll_output` until it yields a timeout; `drain` is the only place that
//! polls.
use super::codec::{DeviceCodec, G711};
use super::media_path::MediaPath;
use super::transcode::Frame;
use super::rtp::{self, RtpWriter};
use super::video::VideoCodec;
use super::video_path::{self, VideoPath};
use crate::media::dtmf::{DtmfDetector, KeyPresses};
use crate::media::ports::PortLease;
use crate::media::relay::ActiveGuard;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::format::{Codec, FormatParams};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::media::KeyframeRequestKind;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

const RECV_BUFFER_BYTES: usize = 2048;
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

pub(super) type Reply<T> = oneshot::Sender<Result<T, String>>;

/// Negotiation and peer changes from the signalling side.
pub(super) enum Control {
    /// The browser offered: answer with the first of `codecs` it accepts, or
    /// with Opus (transcoded to the first law) when it accepts none.
    /// `video`: the formats the device answered for the browser's video
    /// (their payload types are the browser's own).
    Answer { offer: String, codecs: Vec<DeviceCodec>, video: Vec<VideoCodec>, reply: Reply<(String, DeviceCodec)> },
    /// Make an offer to the browser with `codecs`, and `video` (the device's
    /// formats, its direction) when it offered video.
    Offer { codecs: Vec<DeviceCodec>, video: Option<(Vec<VideoCodec>, Direction)>, reply: Reply<String> },
    /// The browser answered our offer: the device's codec, the video formats it took.
    Answered { answer: String, reply: Reply<(DeviceCodec, Vec<VideoCodec>)> },
    /// A new offer from the browser in the running session (re-INVITE).
    Reanswer { offer: String, reply: Reply<String> },
    /// A new offer to the browser in the running session, for a device's
    /// re-INVITE; `direction` is the device's (hold is sendonly).
    Reoffer { direction: Direction, video: Option<Direction>, reply: Reply<String> },
    /// Where the SIP device said (SDP) it receives RTP.
    PlainPeer(SocketAddr),
    /// Where it receives video RTP and RTCP.
    VideoPeer(SocketAddr, SocketAddr),
    /// The device's RFC 4733 payload type and its clock (Hz), if it has one.
    TelephoneEvent(Option<(u8, u32)>),
    /// A key pressed in the browser (SIP INFO), to send to the device.
    SendDtmf(char),
}

pub(super) struct Sockets {
    pub(super) browser: UdpSocket,
    pub(super) plain_rtp: UdpSocket,
    pub(super) plain_rtcp: UdpSocket,
    pub(super) video_rtp: UdpSocket,
    pub(super) video_rtcp: UdpSocket,
    /// Our ICE host candidate: the advertised address and the browser port.
    pub(super) candidate: SocketAddr,
}

pub(super) struct BridgeTask {
    sockets: Sockets,
    rtc: Option<Rtc>,
    pending: Option<SdpPendingOffer>,
    mid: Option<Mid>,
    /// The device's codecs we offered the browser, for reading its answer.
    offered: Vec<DeviceCodec>,
    /// The device's video formats we offered the browser, and their section.
    offered_video: Vec<VideoCodec>,
    video_mid: Option<Mid>,
    video: Option<VideoPath>,
    /// The device's video RTP and RTCP addresses from its SDP, which comes
    /// before the browser's answer creates the path.
    video_peer: Option<(SocketAddr, SocketAddr)>,
    /// Next audio sequence number toward the browser (RTP mode).
    audio_seq: u64,
    path: Option<MediaPath>,
    /// Frames on their way across, reused.
    frames: Vec<Frame>,
    /// The last answer we gave the browser: a 183 then a 200 carry the same one.
    answer: Option<(String, DeviceCodec)>,
    plain_peer: Option<SocketAddr>,
    /// Symmetric RTP: after each SDP change, the first source of RTP wins.
    latched: bool,
    writer: RtpWriter,
    out: Vec<u8>,
    /// The device's telephone-event payload type.
    plain_te: Option<u8>,
    /// Key presses (RFC 4733) waiting to go to the device.
    dtmf_out: KeyPresses,
    /// Timestamp and time of the last audio packet sent to the device, so a
    /// key press lands on the same clock.
    last_plain_ts: Option<(u32, Instant)>,
    /// Key presses the device sends, reported to the call.
    detector: DtmfDetector,
    dtmf_events: mpsc::UnboundedSender<char>,
    control: mpsc::UnboundedReceiver<Control>,
    timed_out: watch::Sender<bool>,
    timeout: Duration,
    last_media: Instant,
    ice_gone: bool,
    /// DTLS-SRTP is up. Audio written before would be queued by str0m and
    /// then sent in one burst, which the browser's jitter buffer pays for by
    /// time-compressing speech for seconds.
    connected: bool,
    _leases: [PortLease; 3],
    _active: ActiveGuard,
}

impl BridgeTask {
    pub(super) fn new(
        sockets: Sockets,
        leases: [PortLease; 3],
        control: mpsc::UnboundedReceiver<Control>,
        timed_out: watch::Sender<bool>,
        timeout: Duration,
        dtmf_events: mpsc::UnboundedSender<char>,
        active: ActiveGuard,
    ) -> Self {
        BridgeTask {
            sockets,
            rtc: None,
            pending: None,
            mid: None,
            offered: Vec::new(),
            offered_video: Vec::new(),
            video_mid: None,
            video: None,
            video_peer: None,
            audio_seq: u64::from(rand::random::<u16>()),
            path: None,
            frames: Vec::new(),
            answer: None,
            plain_peer: None,
            latched: false,
            writer: RtpWriter::new(rand::random(), rand::random()),
            out: Vec::with_capacity(RECV_BUFFER_BYTES),
            plain_te: None,
            dtmf_out: KeyPresses::default(),
            last_plain_ts: None,
            detector: DtmfDetector::default(),
            dtmf_events,
            control,
            timed_out,
            timeout,
            last_media: Instant::now(),
            ice_gone: false,
            connected: false,
            _leases: leases,
            _active: active,
        }
    }

    /// Runs until the handle is dropped.
    pub(super) async fn run(mut self) {
        let mut browser_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut plain_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut rtcp_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut video_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut video_rtcp_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut watchdog = tokio::time::interval(Duration::from_millis(500));
        loop {
            let mut deadline = self.drain();
            if let Some(due) = self.dtmf_out.next_due() {
                deadline = deadline.min(due);
            }
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(c) => self.apply(c),
                    None => break,
                },
                got = self.sockets.browser.recv_from(&mut browser_buf) => {
                    if let Ok((n, src)) = got {
                        self.on_browser_packet(&browser_buf[..n], src);
                    }
                }
                got = self.sockets.plain_rtp.recv_from(&mut plain_buf) => {
                    if let Ok((n, src)) = got {
                        self.on_device_packet(&plain_buf[..n], src);
                    }
                }
                // str0m writes its own RTCP toward the browser; the device's
                // reports are read only so the socket never fills.
                _ = self.sockets.plain_rtcp.recv_from(&mut rtcp_buf) => {}
                got = self.sockets.video_rtp.recv_from(&mut video_buf) => {
                    if let Ok((n, src)) = got {
                        self.on_device_video(&video_buf[..n], src);
                    }
                }
                // Its source is where keyframe requests go; its own
                // keyframe requests go on to the browser.
                got = self.sockets.video_rtcp.recv_from(&mut video_rtcp_buf) => {
                    if let (Ok((n, src)), Some(video)) = (got, self.video.as_mut()) {
                        video.on_device_rtcp(src);
                        if let Some(fir) = video_path::keyframe_asked(&video_rtcp_buf[..n]) {
                            self.ask_browser_for_keyframe(fir);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(rtc) = self.rtc.as_mut() {
                        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
                    }
                    self.send_due_dtmf();
                }
                _ = watchdog.tick() => self.check_timeout(),
            }
        }
        tracing::debug!(candidate = %self.sockets.candidate, "webrtc bridge stopped");
    }

    fn new_rtc(&self, codecs: &[DeviceCodec], browser: &[BrowserCodecs], video: &[VideoCodec]) -> Result<Rtc, String> {
        // RTP mode: packets cross as they are; audio is written packet by packet too.
        let mut config = RtcConfig::new().clear_codecs().set_ice_lite(true).set_rtp_mode(true);
        for kind in browser {
            if *kind == BrowserCodecs::Opus {
                config = config.enable_opus(true, false);
                continue;
            }
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
                super::video::VideoFormat::Vp8 => {
                    config.codec_config().add_config(pt, None, Codec::Vp8, Frequency::NINETY_KHZ, None, FormatParams::default())
                }
                super::video::VideoFormat::H264 => {
                    let (mode1, profile) = v.h264_params();
                    config.codec_config().add_h264(pt, None, mode1, profile)
                }
            }
        }
        let mut rtc = config.build(Instant::now());
        let host = Candidate::host(self.sockets.candidate, "udp").map_err(|e| format!("host candidate: {e}"))?;
        rtc.add_local_candidate(host);
        Ok(rtc)
    }

    fn apply(&mut self, control: Control) {
        match control {
            Control::Answer { offer, codecs, video, reply } => {
                let result = self.answer(&offer, &codecs, video);
                let _ = reply.send(result);
            }
            Control::Offer { codecs, video, reply } => {
                let result = self.offer(&codecs, video);
                let _ = reply.send(result);
            }
            Control::Answered { answer, reply } => {
                let result = self.answered(&answer);
                let _ = reply.send(result);
            }
            Control::Reanswer { offer, reply } => {
                let result = self.reanswer(&offer);
                let _ = reply.send(result);
            }
            Control::Reoffer { direction, video, reply } => {
                let result = self.reoffer(direction, video);
                let _ = reply.send(result);
            }
            Control::PlainPeer(addr) => {
                if self.plain_peer != Some(addr) {
                    self.plain_peer = Some(addr);
                    self.latched = false;
                }
            }
            Control::VideoPeer(rtp, rtcp) => {
                self.video_peer = Some((rtp, rtcp));
                if let Some(video) = self.video.as_mut() {
                    video.set_peer(rtp, rtcp);
                }
            }
            Control::TelephoneEvent(event) => {
                let pt = event.map(|(pt, _)| pt);
                if let Some((_, clock)) = event {
                    // Durations count in the event's declared clock (Opus devices say 48000 or 8000).
                    self.dtmf_out.set_clock(clock);
                }
                self.plain_te = pt;
                self.detector.set_payload_type(pt);
            }
            Control::SendDtmf(digit) => {
                self.queue_dtmf(digit);
                return;
            }
        }
        // Media is expected from now on; silence before the answer is normal.
        self.last_media = Instant::now();
    }

    fn answer(&mut self, offer: &str, codecs: &[DeviceCodec], video: Vec<VideoCodec>) -> Result<(String, DeviceCodec), String> {
        if let Some(done) = &self.answer {
            return Ok(done.clone());
        }
        SdpOffer::from_sdp_string(offer).map_err(|e| format!("browser SDP: {e}"))?;
        self.offered = codecs.to_vec();
        // G.711 passthrough when the browser has the device's law; Opus only if not.
        for browser in [BrowserCodecs::G711, BrowserCodecs::Opus] {
            let mut rtc = self.new_rtc(codecs, &[browser], &video)?;
            let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| format!("browser SDP: {e}"))?;
            let Ok(answer) = rtc.sdp_api().accept_offer(parsed) else { continue };
            // The first accepted section of each kind: the audio, and the video if the device took it.
            let accepted = |kind: MediaKind| {
                (answer.media_lines.iter().filter(|m| !m.disabled && !m.pts.is_empty()).map(|m| m.mid()))
                    .find(|mid| rtc.media(*mid).is_some_and(|m| m.kind() == kind))
            };
            let (Some(mid), video_mid) = (accepted(MediaKind::Audio), accepted(MediaKind::Video)) else { continue };
            let Some(path) = negotiated(&rtc, mid, codecs) else { continue };
            let codec = path.device_codec();
            self.offered_video = video.clone();
            self.video = video_mid.and_then(|v| video_map(&rtc, v, &video)).map(|map| VideoPath::new(map, self.video_peer));
            self.video_mid = video_mid;
            (self.rtc, self.mid, self.path) = (Some(rtc), Some(mid), Some(path));
            self.drain();
            let done = (answer.to_sdp_string(), codec);
            self.answer = Some(done.clone());
            return Ok(done);
        }
        Err("the browser offered neither the device's G.711 law nor Opus".to_string())
    }

    /// Same session, same law: str0m answers the new offer on the running
    /// connection, so ICE and DTLS carry on.
    fn reanswer(&mut self, offer: &str) -> Result<String, String> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("browser SDP: {e}"))?;
        let rtc = self.rtc.as_mut().ok_or("no session to renegotiate")?;
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| format!("browser re-offer refused: {e}"))?;
        self.drain();
        Ok(answer.to_sdp_string())
    }

    /// The device's direction becomes ours toward the browser (we send what
    /// it sends). Nothing changed (a session refresh): an ICE restart keeps
    /// the offer valid and costs the browser one round of checks.
    fn reoffer(&mut self, direction: Direction, video: Option<Direction>) -> Result<String, String> {
        let mid = self.mid.ok_or("no session to renegotiate")?;
        let rtc = self.rtc.as_mut().ok_or("no session to renegotiate")?;
        let mut change = rtc.sdp_api();
        change.set_direction(mid, direction);
        // Only a video stream both sides took (a refused one stays refused).
        if let (Some(video_mid), Some(d), true) = (self.video_mid, video, self.video.is_some()) {
            change.set_direction(video_mid, d);
        }
        if !change.has_changes() {
            change.ice_restart(true);
        }
        let (offer, pending) = change.apply().ok_or("nothing to offer")?;
        self.pending = Some(pending);
        self.drain();
        Ok(offer.to_sdp_string())
    }

    fn offer(&mut self, codecs: &[DeviceCodec], video: Option<(Vec<VideoCodec>, Direction)>) -> Result<String, String> {
        let (video, video_dir) = video.unwrap_or((Vec::new(), Direction::Inactive));
        // The device's laws only. Every WebRTC browser has G.711 (RFC 7874), and
        // with Opus in our offer Chromium's PCMU it sends measured worse (PESQ
        // 3.77 against 4.04): transcoding is for browsers whose own offer lacks G.711.
        // Opus only for a device that has nothing else.
        let kind = if codecs.iter().any(|c| c.law().is_some()) { BrowserCodecs::G711 } else { BrowserCodecs::Opus };
        let mut rtc = self.new_rtc(codecs, &[kind], &video)?;
        self.offered = codecs.to_vec();
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        // BUNDLEd with the audio, in the device's direction: a doorbell camera sends only.
        let video_mid = (!video.is_empty()).then(|| change.add_media(MediaKind::Video, video_dir, None, None, None));
        let (offer, pending) = change.apply().ok_or("nothing to offer")?;
        self.offered_video = video;
        self.video_mid = video_mid;
        self.rtc = Some(rtc);
        self.mid = Some(mid);
        self.pending = Some(pending);
        self.drain();
        Ok(offer.to_sdp_string())
    }

    fn answered(&mut self, answer: &str) -> Result<(DeviceCodec, Vec<VideoCodec>), String> {
        if let (Some(path), None) = (&self.path, &self.pending) {
            return Ok((path.device_codec(), self.accepted_video())); // a 183 already carried this answer
        }
        let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| format!("browser SDP: {e}"))?;
        let pending = self.pending.take().ok_or("no offer is waiting for an answer")?;
        let rtc = self.rtc.as_mut().ok_or("no offer was made")?;
        rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("browser answer refused: {e}"))?;
        self.drain();
        let path = (self.rtc.as_ref().zip(self.mid)).and_then(|(rtc, mid)| negotiated(rtc, mid, &self.offered));
        let path = path.ok_or("the browser accepted none of the device's codecs")?;
        let codec = path.device_codec();
        self.path = Some(path);
        let rtc = self.rtc.as_ref().ok_or("no offer was made")?;
        self.video = self.video_mid.and_then(|mid| video_map(rtc, mid, &self.offered_video)).map(|map| VideoPath::new(map, self.video_peer));
        Ok((codec, self.accepted_video()))
    }

    fn accepted_video(&self) -> Vec<VideoCodec> {
        let Some(video) = &self.video else { return Vec::new() };
        self.offered_video.iter().filter(|v| video.browser_pt(v.device_pt).is_some()).cloned().collect()
    }

    fn on_browser_packet(&mut self, packet: &[u8], source: SocketAddr) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.sockets.candidate, packet) else { return };
        if let Err(e) = rtc.handle_input(Input::Receive(Instant::now(), receive)) {
            tracing::debug!(%source, error = %e, "webrtc input refused");
        }
    }

    fn on_device_packet(&mut self, packet: &[u8], source: SocketAddr) {
        let (Some(path), Some(mid)) = (self.path.as_mut(), self.mid) else { return };
        let Some(rtp) = rtp::parse(packet) else { return };
        if let Some(digit) = self.detector.on_rtp(packet) {
            let _ = self.dtmf_events.send(digit);
        }
        if rtp.payload_type != path.device_codec().payload_type() {
            return;
        }
        if !self.latched {
            self.plain_peer = Some(source);
            self.latched = true;
        }
        self.last_media = Instant::now();
        if !self.connected {
            return;
        }
        let (pt, _) = path.browser_format();
        self.frames.clear();
        path.device_to_browser(rtp.payload_type, rtp.timestamp, rtp.payload, &mut self.frames);
        let Some(rtc) = self.rtc.as_mut() else { return };
        for frame in self.frames.drain(..) {
            write_rtp(rtc, mid, RtpWrite::new(Pt::from(pt), self.audio_seq.into(), frame.timestamp, Instant::now(), frame.payload));
            self.audio_seq += 1;
        }
    }

    /// Device video to the browser: the same packet, the browser's payload type.
    fn on_device_video(&mut self, packet: &[u8], source: SocketAddr) {
        let (Some(video), Some(mid)) = (self.video.as_mut(), self.video_mid) else { return };
        let Some(rtp) = rtp::parse(packet) else { return };
        let Some(pt) = video.browser_pt(rtp.payload_type) else { return };
        video.on_device_rtp(source, rtp.ssrc);
        let seq = video.next_browser_seq();
        if !self.connected {
            return;
        }
        let Some(rtc) = self.rtc.as_mut() else { return };
        let write = RtpWrite::new(Pt::from(pt), seq.into(), rtp.timestamp, Instant::now(), rtp.payload.to_vec());
        // Kept for the browser's NACKs: a lost piece of a keyframe is worth resending.
        write_rtp(rtc, mid, write.marker(rtp.marker).nackable(true));
    }

    /// The device wants a keyframe of the browser's camera: str0m sends the
    /// browser a PLI or FIR for the stream it receives.
    fn ask_browser_for_keyframe(&mut self, fir: bool) {
        let (Some(rtc), Some(mid)) = (self.rtc.as_mut(), self.video_mid) else { return };
        let kind = if fir { KeyframeRequestKind::Fir } else { KeyframeRequestKind::Pli };
        if let Some(stream) = rtc.direct_api().stream_rx_by_mid(mid, None) {
            stream.request_keyframe(kind);
        }
        self.drain();
    }

    /// Polls str0m until it asks to be woken; returns when.
    fn drain(&mut self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(1);
        loop {
            let Some(rtc) = self.rtc.as_mut() else { return idle };
            let output = match rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(error = %e, "webrtc session failed");
                    self.ice_gone = true;
                    self.rtc = None;
                    return idle;
                }
            };
            match output {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.sockets.browser.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "webrtc ICE state");
                if state == IceConnectionState::Disconnected {
                    self.ice_gone = true;
                }
            }
            Event::Connected => {
                tracing::debug!(candidate = %self.sockets.candidate, "webrtc DTLS-SRTP up");
                self.connected = true;
            }
            Event::RtpPacket(packet) => self.on_browser_rtp(packet),
            Event::KeyframeRequest(req) if Some(req.mid) == self.video_mid => {
                let Some(video) = self.video.as_mut() else { return };
                let Some(request) = video.keyframe_request(req.kind == KeyframeRequestKind::Fir) else { return };
                if let Some(peer) = video.rtcp_peer {
                    tracing::debug!(kind = ?req.kind, "keyframe request to the device");
                    let _ = self.sockets.video_rtcp.try_send_to(&request, peer);
                }
            }
            _ => {}
        }
    }

    fn on_browser_rtp(&mut self, packet: RtpPacket) {
        // RTP mode hands over Chrome's padding-only probes too: as empty
        // packets they would cost the device's jitter buffer a frame each.
        if packet.payload.is_empty() {
            return;
        }
        let pt = *packet.header.payload_type;
        if let Some(video) = self.video.as_mut()
            && let Some(device_pt) = video.device_pt(pt)
        {
            let Some(peer) = video.peer else { return };
            video.write_for_device(device_pt, packet.header.timestamp, packet.header.marker, &packet.payload, &mut self.out);
            let _ = self.sockets.video_rtp.try_send_to(&self.out, peer);
            return;
        }
        self.last_media = Instant::now();
        let (Some(peer), Some(path)) = (self.plain_peer, self.path.as_mut()) else { return };
        let device_pt = path.device_codec().payload_type();
        self.frames.clear();
        // Decoded even while a key press plays, so the decoder keeps its state.
        path.browser_to_device(pt, packet.time.numer(), packet.time.frequency().get(), &packet.payload, &mut self.frames);
        for frame in self.frames.drain(..) {
            self.last_plain_ts = Some((frame.timestamp, Instant::now()));
            if !self.dtmf_out.is_empty() {
                continue; // a key press is playing: its events replace the audio
            }
            self.writer.write(device_pt, frame.timestamp, false, &frame.payload, &mut self.out);
            let _ = self.sockets.plain_rtp.try_send_to(&self.out, peer);
        }
    }

    /// Schedules one RFC 4733 key press after any already queued.
    fn queue_dtmf(&mut self, digit: char) {
        if self.plain_te.is_none() {
            tracing::info!(%digit, "DTMF not sent: the device has no telephone-event");
            return;
        }
        let now = Instant::now();
        // The event's timestamp continues the audio clock toward the device.
        if !self.dtmf_out.press(digit, self.last_plain_ts.unwrap_or((0, now)), now) {
            tracing::info!(%digit, "DTMF not sent: not a key");
        }
    }

    fn send_due_dtmf(&mut self) {
        let now = Instant::now();
        while let Some((timestamp, packet)) = self.dtmf_out.pop_due(now) {
            if let (Some(pt), Some(peer)) = (self.plain_te, self.plain_peer) {
                self.writer.write(pt, timestamp, packet.marker, &packet.payload, &mut self.out);
                let _ = self.sockets.plain_rtp.try_send_to(&self.out, peer);
            }
        }
    }

    fn check_timeout(&mut self) {
        let silent = self.last_media.elapsed() >= self.timeout;
        let dead = self.ice_gone || self.rtc.as_ref().is_some_and(|r| !r.is_alive());
        let timed_out = dead || silent;
        self.timed_out.send_if_modified(|current| std::mem::replace(current, timed_out) != timed_out);
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
            let same = |p: &&str0m::format::PayloadParams| {
                let spec = p.spec();
                match v.format {
                    super::video::VideoFormat::Vp8 => spec.codec == Codec::Vp8,
                    super::video::VideoFormat::H264 => {
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

/// One packet to the browser on `mid`'s send stream (declared by the SDP).
fn write_rtp(rtc: &mut Rtc, mid: Mid, write: RtpWrite) {
    let mut api = rtc.direct_api();
    if let Some(tx) = api.stream_tx_by_mid(mid, None) {
        tx.write_rtp(write);
    }
}
