//! The async shell around one bridge (core.rs, sans-IO): it owns the
//! browser's UDP socket (ICE, DTLS, SRTP all on one port: rtcp-mux,
//! BUNDLE) and the plain RTP/RTCP pairs toward the SIP device, hands the
//! core what arrives and the time, sends what it returns, and answers the
//! call's negotiation requests. No decisions are made here.
use super::codec::DeviceCodec;
use super::core::{BridgeCore, Input, Output, Socket};
use super::video::VideoCodec;
use crate::media::ports::PortLease;
use crate::media::relay::ActiveGuard;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::media::Direction;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

const RECV_BUFFER_BYTES: usize = 2048;
/// How often the media timeout is looked at.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(500);

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
    DevicePeer(SocketAddr),
    /// Where it receives video RTP and RTCP.
    DeviceVideoPeer(SocketAddr, SocketAddr),
    /// The host the device's signalling came from.
    DeviceHost(Option<IpAddr>),
    /// The device's RFC 4733 payload type and its clock (Hz), if it has one.
    TelephoneEvent(Option<(u8, u32)>),
    /// A key pressed in the browser (SIP INFO), to send to the device.
    SendDtmf(char),
    /// The browser only previews (door preview) or, `false`, talks.
    Preview(bool),
    /// Where the audio stream toward the device stands.
    DeviceStream(Reply<Option<crate::media::rtp::StreamPosition>>),
}

pub(super) struct Sockets {
    pub(super) browser: UdpSocket,
    pub(super) device_rtp: UdpSocket,
    pub(super) device_rtcp: UdpSocket,
    pub(super) video_rtp: UdpSocket,
    pub(super) video_rtcp: UdpSocket,
}

impl Sockets {
    fn get(&self, socket: Socket) -> &UdpSocket {
        match socket {
            Socket::Browser => &self.browser,
            Socket::DeviceAudio => &self.device_rtp,
            Socket::DeviceVideo => &self.video_rtp,
            Socket::DeviceVideoRtcp => &self.video_rtcp,
        }
    }
}

pub(super) struct BridgeTask {
    sockets: Sockets,
    core: BridgeCore,
    dtmf_events: mpsc::UnboundedSender<char>,
    control: mpsc::UnboundedReceiver<Control>,
    timed_out: watch::Sender<bool>,
    _leases: [PortLease; 3],
    _active: ActiveGuard,
}

impl BridgeTask {
    /// `candidate`: our ICE host candidate, the advertised address and the browser port.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        sockets: Sockets,
        candidate: SocketAddr,
        leases: [PortLease; 3],
        control: mpsc::UnboundedReceiver<Control>,
        timed_out: watch::Sender<bool>,
        timeout: Duration,
        dtmf_events: mpsc::UnboundedSender<char>,
        active: ActiveGuard,
    ) -> Self {
        let core = BridgeCore::new(candidate, timeout, Instant::now());
        BridgeTask { sockets, core, dtmf_events, control, timed_out, _leases: leases, _active: active }
    }

    /// Runs until the handle is dropped.
    pub(super) async fn run(mut self) {
        let mut browser_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut device_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut rtcp_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut video_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut video_rtcp_buf = vec![0u8; RECV_BUFFER_BYTES];
        let mut watchdog = tokio::time::interval(WATCHDOG_PERIOD);
        loop {
            self.flush();
            let deadline = self.core.poll_timeout(Instant::now());
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(c) => self.apply(c),
                    None => break,
                },
                got = self.sockets.browser.recv_from(&mut browser_buf) => {
                    if let Ok((n, source)) = got {
                        self.core.handle_input(Input::Browser { at: Instant::now(), source, packet: &browser_buf[..n] });
                    }
                }
                got = self.sockets.device_rtp.recv_from(&mut device_buf) => {
                    if let Ok((n, source)) = got {
                        self.core.handle_input(Input::DeviceAudio { at: Instant::now(), source, packet: &device_buf[..n] });
                    }
                }
                // str0m writes its own RTCP toward the browser; the device's
                // reports are read only so the socket never fills.
                _ = self.sockets.device_rtcp.recv_from(&mut rtcp_buf) => {}
                got = self.sockets.video_rtp.recv_from(&mut video_buf) => {
                    if let Ok((n, source)) = got {
                        self.core.handle_input(Input::DeviceVideo { at: Instant::now(), source, packet: &video_buf[..n] });
                    }
                }
                got = self.sockets.video_rtcp.recv_from(&mut video_rtcp_buf) => {
                    if let Ok((n, source)) = got {
                        self.core.handle_input(Input::DeviceVideoRtcp { at: Instant::now(), source, packet: &video_rtcp_buf[..n] });
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => self.core.handle_input(Input::Timeout(Instant::now())),
                _ = watchdog.tick() => {
                    let timed_out = self.core.is_timed_out(Instant::now());
                    self.timed_out.send_if_modified(|current| std::mem::replace(current, timed_out) != timed_out);
                }
            }
        }
        tracing::debug!(candidate = %self.core.candidate(), dropped_untrusted = self.core.dropped_untrusted(), dropped_preview = self.core.dropped_preview(), "webrtc bridge stopped");
    }

    /// Sends what the core has to send; passes on the device's key presses.
    fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { from, to, packet } => {
                    let _ = self.sockets.get(from).try_send_to(&packet, to);
                }
                Output::Dtmf(digit) => {
                    let _ = self.dtmf_events.send(digit);
                }
            }
        }
    }

    fn apply(&mut self, control: Control) {
        let now = Instant::now();
        let core = &mut self.core;
        match control {
            Control::Answer { offer, codecs, video, reply } => {
                let _ = reply.send(core.answer(now, &offer, &codecs, video));
            }
            Control::Offer { codecs, video, reply } => {
                let _ = reply.send(core.offer(now, &codecs, video));
            }
            Control::Answered { answer, reply } => {
                let _ = reply.send(core.answered(now, &answer));
            }
            Control::Reanswer { offer, reply } => {
                let _ = reply.send(core.reanswer(now, &offer));
            }
            Control::Reoffer { direction, video, reply } => {
                let _ = reply.send(core.reoffer(now, direction, video));
            }
            Control::DevicePeer(addr) => core.set_device_peer(now, addr),
            Control::DeviceVideoPeer(rtp, rtcp) => core.set_device_video_peer(now, rtp, rtcp),
            Control::DeviceHost(host) => core.set_device_host(host),
            Control::TelephoneEvent(event) => core.set_device_telephone_event(now, event),
            Control::SendDtmf(digit) => core.send_dtmf(now, digit),
            Control::Preview(on) => core.set_preview(on),
            Control::DeviceStream(reply) => {
                let _ = reply.send(Ok(core.device_stream()));
            }
        }
    }
}
