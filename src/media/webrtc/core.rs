//! The bridge's logic, sans-IO: packets and time go in
//! ([`BridgeCore::handle_input`]), datagrams to send and events come out
//! ([`BridgeCore::poll_output`]), and [`BridgeCore::poll_timeout`] says when
//! to come back. The str0m `Rtc` inside works the same way; `drain` is the
//! only place that polls it. The async shell (task.rs) owns the sockets
//! and the clock; tests drive this with virtual time (core_tests.rs).
//!
//! Audio crosses as media_path.rs says (G.711 unchanged, Opus passed
//! through or transcoded); video crosses as RTP with only its payload type
//! changed (video_path.rs). Toward the device, RTP goes only to the hosts
//! signalling named (the relay's `Latch`), and the call is dead when no
//! media flowed either way for the timeout (the relay's `Watchdog`).
use crate::media::rtp::StreamPosition;
use super::codec::DeviceCodec;
use super::media_path::MediaPath;
use super::negotiation::{Agreed, Negotiation};
use crate::media::rtp::{self, RtpWriter};
use super::transcode::Frame;
use super::video::VideoCodec;
use super::video_path::{self, VideoPath};
use crate::media::dtmf::{DtmfDetector, KeyPresses};
use crate::media::relay::latch::{Admit, Latch};
use crate::media::relay::watchdog::Watchdog;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::media::{Direction, KeyframeRequestKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Event, IceConnectionState, Output as RtcOutput, Rtc};

/// With no session yet, come back after this long anyway.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// The browser addresses remembered as ICE-validated (the oldest goes).
const MAX_BROWSER_PEERS: usize = 8;

/// A datagram that arrived, with when and from where.
pub(super) enum Input<'a> {
    /// On the browser's port: ICE, DTLS, SRTP.
    Browser { at: Instant, source: SocketAddr, packet: &'a [u8] },
    /// On the device's audio RTP port.
    DeviceAudio { at: Instant, source: SocketAddr, packet: &'a [u8] },
    /// On the device's video RTP port.
    DeviceVideo { at: Instant, source: SocketAddr, packet: &'a [u8] },
    /// On the device's video RTCP port.
    DeviceVideoRtcp { at: Instant, source: SocketAddr, packet: &'a [u8] },
    /// The time [`BridgeCore::poll_timeout`] named has come.
    Timeout(Instant),
}

/// Which socket a datagram leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Socket {
    Browser,
    DeviceAudio,
    DeviceVideo,
    DeviceVideoRtcp,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Output {
    Send { from: Socket, to: SocketAddr, packet: Vec<u8> },
    /// The device pressed a key (RFC 4733).
    Dtmf(char),
}

pub(super) struct BridgeCore {
    negotiation: Negotiation,
    path: Option<MediaPath>,
    video: Option<VideoPath>,
    /// The device's video RTP and RTCP addresses from its SDP, which comes
    /// before the browser's answer creates the path.
    video_peer: Option<(SocketAddr, SocketAddr)>,
    /// Where the device's signalling came from: its media may come from there.
    device_host: Option<IpAddr>,
    /// The device's audio: where it may send from, where we send to.
    latch: Latch,
    /// Next audio sequence number toward the browser (RTP mode).
    audio_seq: u64,
    /// Frames on their way across, reused.
    frames: Vec<Frame>,
    writer: RtpWriter,
    /// The device's telephone-event payload type.
    device_te: Option<u8>,
    /// Key presses (RFC 4733) waiting to go to the device.
    dtmf_out: KeyPresses,
    /// Timestamp and time of the last audio packet sent to the device, so a
    /// key press lands on the same clock.
    last_device_ts: Option<(u32, Instant)>,
    /// Key presses the device sends, reported to the call.
    detector: DtmfDetector,
    watchdog: Watchdog,
    ice_gone: bool,
    /// DTLS-SRTP is up. Audio written before would be queued by str0m and
    /// then sent in one burst, which the browser's jitter buffer pays for by
    /// time-compressing speech for seconds.
    connected: bool,
    /// When str0m wants to be woken.
    rtc_timeout: Option<Instant>,
    /// Packets from hosts signalling did not name, dropped.
    dropped_untrusted: u64,
    /// Where str0m has sent to: as an ICE-lite agent it answers only STUN
    /// checks that carry our ICE password, so these are the browser's
    /// validated addresses. DTLS, RTP and RTCP are taken from them alone.
    browser_peers: Vec<SocketAddr>,
    /// A ringing browser previews the device (door preview): the device's
    /// media reaches the browser, nothing of the browser's reaches the
    /// device (audio, video, key presses) until the answer ends it.
    preview: bool,
    /// Browser packets held back by the preview.
    dropped_preview: u64,
    out: VecDeque<Output>,
}

impl BridgeCore {
    /// `candidate`: our ICE host candidate (the advertised address and the
    /// browser port); `timeout`: the media timeout.
    pub(super) fn new(candidate: SocketAddr, timeout: Duration, now: Instant) -> Self {
        let mut watchdog = Watchdog::new(timeout, now);
        watchdog.arm(now);
        BridgeCore {
            negotiation: Negotiation::new(candidate),
            path: None,
            video: None,
            video_peer: None,
            device_host: None,
            latch: Latch::default(),
            audio_seq: u64::from(rand::random::<u16>()),
            frames: Vec::new(),
            writer: RtpWriter::new(rand::random(), rand::random()),
            device_te: None,
            dtmf_out: KeyPresses::default(),
            last_device_ts: None,
            detector: DtmfDetector::default(),
            watchdog,
            ice_gone: false,
            connected: false,
            rtc_timeout: None,
            dropped_untrusted: 0,
            browser_peers: Vec::new(),
            preview: false,
            dropped_preview: 0,
            out: VecDeque::new(),
        }
    }

    pub(super) fn candidate(&self) -> SocketAddr {
        self.negotiation.candidate()
    }

    /// Packets from hosts signalling did not name, dropped so far.
    pub(super) fn dropped_untrusted(&self) -> u64 {
        self.dropped_untrusted
    }

    /// Browser packets the preview held back so far.
    pub(super) fn dropped_preview(&self) -> u64 {
        self.dropped_preview
    }

    /// The browser previews (`true`: it receives only) or talks (`false`,
    /// the answer). Set before its answer is accepted, so not one packet of
    /// it reaches the device before the callee answers.
    /// The audio stream sent to the device so far: SSRC, last sequence
    /// number and timestamp (None before its first packet), so whoever
    /// takes over the device's stream can continue it.
    pub(super) fn device_stream(&self) -> Option<StreamPosition> {
        let (ssrc, last_seq) = self.writer.written();
        self.last_device_ts.map(|(last_ts, _)| StreamPosition { ssrc, last_seq, last_ts })
    }

    pub(super) fn set_preview(&mut self, on: bool) {
        if self.preview && !on {
            tracing::debug!(held_back = self.dropped_preview, "webrtc preview ends: the browser answered");
        }
        self.preview = on;
    }

    // ---- negotiation (from the signalling side) ----

    /// The browser offered: our answer and the device's codec.
    pub(super) fn answer(&mut self, now: Instant, offer: &str, codecs: &[DeviceCodec], video: Vec<VideoCodec>) -> Result<(String, DeviceCodec), String> {
        let (sdp, codec, agreed) = self.negotiation.answer(now, offer, codecs, video)?;
        if let Some(agreed) = agreed {
            self.agree(agreed);
        }
        self.signalled(now);
        Ok((sdp, codec))
    }

    /// An offer to the browser.
    pub(super) fn offer(&mut self, now: Instant, codecs: &[DeviceCodec], video: Option<(Vec<VideoCodec>, Direction)>) -> Result<String, String> {
        let sdp = self.negotiation.offer(now, codecs, video)?;
        self.signalled(now);
        Ok(sdp)
    }

    /// The browser answered our offer: the device's codec and the video formats it took.
    pub(super) fn answered(&mut self, now: Instant, answer: &str) -> Result<(DeviceCodec, Vec<VideoCodec>), String> {
        if let (Some(path), false) = (&self.path, self.negotiation.is_pending()) {
            return Ok((path.device_codec(), self.accepted_video())); // a 183 already carried this answer
        }
        let agreed = self.negotiation.answered(answer)?;
        let codec = agreed.path.device_codec();
        self.agree(agreed);
        self.signalled(now);
        Ok((codec, self.accepted_video()))
    }

    /// A new offer from the browser in the running session.
    pub(super) fn reanswer(&mut self, now: Instant, offer: &str) -> Result<String, String> {
        let sdp = self.negotiation.reanswer(offer)?;
        self.signalled(now);
        Ok(sdp)
    }

    /// A new offer to the browser for a device's re-INVITE, in its direction.
    pub(super) fn reoffer(&mut self, now: Instant, direction: Direction, video: Option<Direction>) -> Result<String, String> {
        // Only a video stream both sides took (a refused one stays refused).
        let video = video.filter(|_| self.video.is_some());
        let sdp = self.negotiation.reoffer(direction, video)?;
        self.signalled(now);
        Ok(sdp)
    }

    fn agree(&mut self, agreed: Agreed) {
        self.path = Some(agreed.path);
        self.video = agreed.video.map(|map| VideoPath::new(map, self.video_peer, self.device_host));
    }

    fn accepted_video(&self) -> Vec<VideoCodec> {
        let Some(video) = &self.video else { return Vec::new() };
        self.negotiation.offered_video.iter().filter(|v| video.browser_pt(v.device_pt).is_some()).cloned().collect()
    }

    /// After any signalling: str0m has output, and media is expected from
    /// now on (silence before the answer is normal).
    fn signalled(&mut self, now: Instant) {
        self.watchdog.arm(now);
        self.drain(now);
    }

    /// Where the SIP device said (SDP) it receives RTP.
    pub(super) fn set_device_peer(&mut self, now: Instant, addr: SocketAddr) {
        self.latch.set_peer(addr);
        self.watchdog.arm(now);
    }

    /// Where the device receives video RTP and RTCP.
    pub(super) fn set_device_video_peer(&mut self, now: Instant, rtp: SocketAddr, rtcp: SocketAddr) {
        self.video_peer = Some((rtp, rtcp));
        if let Some(video) = self.video.as_mut() {
            video.set_peer(rtp, rtcp);
        }
        self.watchdog.arm(now);
    }

    /// The host the device's signalling came from (its NAT's address).
    pub(super) fn set_device_host(&mut self, host: Option<IpAddr>) {
        self.device_host = host;
        self.latch.set_signalling_host(host);
        if let Some(video) = self.video.as_mut() {
            video.set_signalling_host(host);
        }
    }

    /// The device's RFC 4733 payload type and its clock (Hz), if it has one.
    pub(super) fn set_device_telephone_event(&mut self, now: Instant, event: Option<(u8, u32)>) {
        if let Some((_, clock)) = event {
            // Durations count in the event's declared clock (Opus devices say 48000 or 8000).
            self.dtmf_out.set_clock(clock);
        }
        self.device_te = event.map(|(pt, _)| pt);
        self.detector.set_payload_type(self.device_te);
        self.watchdog.arm(now);
    }

    /// Schedules one RFC 4733 key press to the device after any already queued.
    pub(super) fn send_dtmf(&mut self, now: Instant, digit: char) {
        if self.preview {
            tracing::info!(%digit, "DTMF not sent: the browser only previews the call");
            return;
        }
        if self.device_te.is_none() {
            tracing::info!(%digit, "DTMF not sent: the device has no telephone-event");
            return;
        }
        // The event's timestamp continues the audio clock toward the device.
        if !self.dtmf_out.press(digit, self.last_device_ts.unwrap_or((0, now)), now) {
            tracing::info!(%digit, "DTMF not sent: not a key");
        }
    }

    // ---- packets and time ----

    pub(super) fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Browser { at, source, packet } => self.on_browser_packet(at, source, packet),
            Input::DeviceAudio { at, source, packet } => self.on_device_audio(at, source, packet),
            Input::DeviceVideo { at, source, packet } => self.on_device_video(at, source, packet),
            Input::DeviceVideoRtcp { at, source, packet } => self.on_device_video_rtcp(at, source, packet),
            Input::Timeout(now) => {
                if let Some(rtc) = self.negotiation.rtc.as_mut() {
                    let _ = rtc.handle_input(str0m::Input::Timeout(now));
                }
                self.send_due_dtmf(now);
                self.drain(now);
            }
        }
    }

    pub(super) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Self::handle_input`] with [`Input::Timeout`] next.
    pub(super) fn poll_timeout(&self, now: Instant) -> Instant {
        let mut at = self.rtc_timeout.unwrap_or(now + IDLE_WAKE);
        if let Some(due) = self.dtmf_out.next_due() {
            at = at.min(due);
        }
        at
    }

    /// No media either way for the timeout, the browser's ICE is gone (tab
    /// closed) or its session failed.
    pub(super) fn is_timed_out(&self, now: Instant) -> bool {
        let dead = self.ice_gone || self.negotiation.rtc.as_ref().is_some_and(|r| !r.is_alive());
        dead || self.watchdog.is_timed_out(now)
    }

    fn on_browser_packet(&mut self, at: Instant, source: SocketAddr, packet: &[u8]) {
        let candidate = self.negotiation.candidate();
        let Some(rtc) = self.negotiation.rtc.as_mut() else { return };
        // RFC 7983: 0-3 is STUN, which str0m checks against our ICE password;
        // anything else from an address that has not passed such a check is a
        // stranger's (a stranger's DTLS reached a panic in dimpl 0.7.6).
        if packet.first().is_none_or(|&b| b > 3) && !self.browser_peers.contains(&source) {
            self.dropped_untrusted += 1;
            return;
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, candidate, packet) else { return };
        if let Err(e) = rtc.handle_input(str0m::Input::Receive(at, receive)) {
            tracing::debug!(%source, error = %e, "webrtc input refused");
        }
        self.drain(at);
    }

    fn on_device_audio(&mut self, at: Instant, source: SocketAddr, packet: &[u8]) {
        if self.path.is_none() {
            return;
        }
        let Some(rtp) = rtp::parse(packet) else { return };
        if self.latch.admit(source, at) != Admit::Accept {
            self.dropped_untrusted += 1;
            return;
        }
        if let Some(digit) = self.detector.on_rtp(packet) {
            self.out.push_back(Output::Dtmf(digit));
        }
        let (Some(path), Some(mid)) = (self.path.as_mut(), self.negotiation.mid) else { return };
        if rtp.payload_type != path.device_codec().payload_type() {
            return;
        }
        self.watchdog.on_media(at);
        if !self.connected {
            return;
        }
        let (pt, _) = path.browser_format();
        self.frames.clear();
        path.device_to_browser(rtp.payload_type, rtp.timestamp, rtp.payload, &mut self.frames);
        let Some(rtc) = self.negotiation.rtc.as_mut() else { return };
        for frame in self.frames.drain(..) {
            write_rtp(rtc, mid, RtpWrite::new(Pt::from(pt), self.audio_seq.into(), frame.timestamp, at, frame.payload));
            self.audio_seq += 1;
        }
        self.drain(at);
    }

    /// Device video to the browser: the same packet, the browser's payload type.
    fn on_device_video(&mut self, at: Instant, source: SocketAddr, packet: &[u8]) {
        let (Some(video), Some(mid)) = (self.video.as_mut(), self.negotiation.video_mid) else { return };
        let Some(rtp) = rtp::parse(packet) else { return };
        let Some(pt) = video.browser_pt(rtp.payload_type) else { return };
        if !video.on_device_rtp(source, rtp.ssrc, at) {
            self.dropped_untrusted += 1;
            return;
        }
        let seq = video.next_browser_seq();
        if !self.connected {
            return;
        }
        let Some(rtc) = self.negotiation.rtc.as_mut() else { return };
        let write = RtpWrite::new(Pt::from(pt), seq.into(), rtp.timestamp, at, rtp.payload.to_vec());
        // Kept for the browser's NACKs: a lost piece of a keyframe is worth resending.
        write_rtp(rtc, mid, write.marker(rtp.marker).nackable(true));
        self.drain(at);
    }

    /// Its source is where keyframe requests go; its own keyframe requests
    /// go on to the browser: str0m sends the browser a PLI or FIR for the
    /// stream it receives.
    fn on_device_video_rtcp(&mut self, at: Instant, source: SocketAddr, packet: &[u8]) {
        let Some(video) = self.video.as_mut() else { return };
        if !video.on_device_rtcp(source, at) {
            self.dropped_untrusted += 1;
            return;
        }
        let Some(fir) = video_path::keyframe_asked(packet) else { return };
        let (Some(rtc), Some(mid)) = (self.negotiation.rtc.as_mut(), self.negotiation.video_mid) else { return };
        let kind = if fir { KeyframeRequestKind::Fir } else { KeyframeRequestKind::Pli };
        if let Some(stream) = rtc.direct_api().stream_rx_by_mid(mid, None) {
            stream.request_keyframe(kind);
        }
        self.drain(at);
    }

    /// Polls str0m until it asks to be woken.
    fn drain(&mut self, now: Instant) {
        loop {
            let Some(rtc) = self.negotiation.rtc.as_mut() else {
                self.rtc_timeout = None;
                return;
            };
            let output = match rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(error = %e, "webrtc session failed");
                    self.ice_gone = true;
                    self.negotiation.rtc = None;
                    self.rtc_timeout = None;
                    return;
                }
            };
            match output {
                RtcOutput::Timeout(t) => {
                    self.rtc_timeout = Some(t);
                    return;
                }
                RtcOutput::Transmit(t) => {
                    if !self.browser_peers.contains(&t.destination) {
                        // Bounded: a browser has a handful of candidates.
                        if self.browser_peers.len() == MAX_BROWSER_PEERS {
                            self.browser_peers.remove(0);
                        }
                        self.browser_peers.push(t.destination);
                    }
                    self.out.push_back(Output::Send { from: Socket::Browser, to: t.destination, packet: t.contents.into() });
                }
                RtcOutput::Event(e) => self.on_event(now, e),
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "webrtc ICE state");
                if state == IceConnectionState::Disconnected {
                    self.ice_gone = true;
                }
            }
            Event::Connected => {
                tracing::debug!(candidate = %self.negotiation.candidate(), "webrtc DTLS-SRTP up");
                self.connected = true;
            }
            Event::RtpPacket(packet) => self.on_browser_rtp(now, packet),
            Event::KeyframeRequest(req) if Some(req.mid) == self.negotiation.video_mid => {
                let Some(video) = self.video.as_mut() else { return };
                let Some(request) = video.keyframe_request(req.kind == KeyframeRequestKind::Fir) else { return };
                if let Some(peer) = video.rtcp_peer() {
                    tracing::debug!(kind = ?req.kind, "keyframe request to the device");
                    self.out.push_back(Output::Send { from: Socket::DeviceVideoRtcp, to: peer, packet: request });
                }
            }
            _ => {}
        }
    }

    fn on_browser_rtp(&mut self, now: Instant, packet: RtpPacket) {
        // RTP mode hands over Chrome's padding-only probes too: as empty
        // packets they would cost the device's jitter buffer a frame each.
        if packet.payload.is_empty() {
            return;
        }
        if self.preview {
            self.dropped_preview += 1;
            return;
        }
        let pt = *packet.header.payload_type;
        if let Some(video) = self.video.as_mut()
            && let Some(device_pt) = video.device_pt(pt)
        {
            let Some(peer) = video.peer() else { return };
            let mut out = Vec::with_capacity(12 + packet.payload.len());
            video.write_for_device(device_pt, packet.header.timestamp, packet.header.marker, &packet.payload, &mut out);
            self.out.push_back(Output::Send { from: Socket::DeviceVideo, to: peer, packet: out });
            return;
        }
        self.watchdog.on_media(now);
        let (Some(peer), Some(path)) = (self.latch.target(), self.path.as_mut()) else { return };
        let device_pt = path.device_codec().payload_type();
        self.frames.clear();
        // Decoded even while a key press plays, so the decoder keeps its state.
        path.browser_to_device(pt, packet.time.numer(), packet.time.frequency().get(), &packet.payload, &mut self.frames);
        for frame in self.frames.drain(..) {
            self.last_device_ts = Some((frame.timestamp, now));
            if !self.dtmf_out.is_empty() {
                continue; // a key press is playing: its events replace the audio
            }
            let mut out = Vec::with_capacity(12 + frame.payload.len());
            self.writer.write(device_pt, frame.timestamp, false, &frame.payload, &mut out);
            self.out.push_back(Output::Send { from: Socket::DeviceAudio, to: peer, packet: out });
        }
    }

    fn send_due_dtmf(&mut self, now: Instant) {
        while let Some((timestamp, packet)) = self.dtmf_out.pop_due(now) {
            if let (Some(pt), Some(peer)) = (self.device_te, self.latch.target()) {
                let mut out = Vec::with_capacity(16);
                self.writer.write(pt, timestamp, packet.marker, &packet.payload, &mut out);
                self.out.push_back(Output::Send { from: Socket::DeviceAudio, to: peer, packet: out });
            }
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
