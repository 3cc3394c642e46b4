//! What the call holds for a browser leg. Dropping it ends the bridge task,
//! which closes its sockets and returns the ports.
use super::codec::DeviceCodec;
use super::video::{DeviceVideo, VideoCodec};
use super::task::{BridgeTask, Control, Reply, Sockets};
use crate::media::ports::PortPair;
use crate::media::relay::ActiveGuard;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

pub struct WebRtcBridge {
    browser_port: u16,
    device_port: u16,
    video_port: u16,
    control: mpsc::UnboundedSender<Control>,
    timed_out: watch::Receiver<bool>,
    dtmf: Option<mpsc::UnboundedReceiver<char>>,
}

impl WebRtcBridge {
    /// `pairs[0]`'s RTP socket faces the browser; `pairs[1]` the device's
    /// audio, `pairs[2]` its video (idle when there is none).
    pub(crate) fn spawn(pairs: [PortPair; 3], advertise: IpAddr, timeout: Duration, active: ActiveGuard) -> std::io::Result<Self> {
        let [browser, device, video] = pairs;
        let browser_port = browser.lease.rtp_port();
        let device_port = device.lease.rtp_port();
        let video_port = video.lease.rtp_port();
        // The browser side needs no RTCP port (rtcp-mux); its socket closes here.
        let sockets = Sockets {
            browser: UdpSocket::from_std(browser.rtp)?,
            device_rtp: UdpSocket::from_std(device.rtp)?,
            device_rtcp: UdpSocket::from_std(device.rtcp)?,
            video_rtp: UdpSocket::from_std(video.rtp)?,
            video_rtcp: UdpSocket::from_std(video.rtcp)?,
        };
        let candidate = SocketAddr::new(advertise, browser_port);
        let (control, control_rx) = mpsc::unbounded_channel();
        let (timed_out_tx, timed_out) = watch::channel(false);
        let (dtmf_tx, dtmf) = mpsc::unbounded_channel();
        let task = BridgeTask::new(sockets, candidate, [browser.lease, device.lease, video.lease], control_rx, timed_out_tx, timeout, dtmf_tx, active);
        tokio::spawn(task.run());
        Ok(WebRtcBridge { browser_port, device_port, video_port, control, timed_out, dtmf: Some(dtmf) })
    }

    /// The RTP port written into SDP toward the SIP device.
    pub fn device_port(&self) -> u16 {
        self.device_port
    }

    /// The video RTP port written into SDP toward the device (RTCP: +1).
    pub fn video_port(&self) -> u16 {
        self.video_port
    }

    pub fn browser_port(&self) -> u16 {
        self.browser_port
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Control) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.control.send(make(tx)).map_err(|_| anyhow::anyhow!("webrtc bridge stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("webrtc bridge stopped"))?.map_err(|e| anyhow::anyhow!(e))
    }

    /// Answer the browser's offer with the first of the device's `codecs` it
    /// also offers (Opus transcoded to the first law if it offers none); the
    /// codec the device is to use.
    /// Asking again returns the same answer (183 then 200).
    /// `video`: the formats the device answered to the browser's video
    /// (under the browser's payload types), empty for none.
    pub async fn answer_browser(&self, offer: &str, codecs: &[DeviceCodec], video: &[VideoCodec]) -> anyhow::Result<(String, DeviceCodec)> {
        self.ask(|reply| Control::Answer { offer: offer.to_string(), codecs: codecs.to_vec(), video: video.to_vec(), reply }).await
    }

    /// Where the audio stream toward the device stands (None: nothing sent yet).
    pub async fn device_stream(&self) -> anyhow::Result<Option<crate::media::rtp::StreamPosition>> {
        self.ask(Control::DeviceStream).await
    }

    /// An offer for the browser carrying `codecs`, and the device's video if any.
    pub async fn offer_browser(&self, codecs: &[DeviceCodec], video: Option<&DeviceVideo>) -> anyhow::Result<String> {
        let video = video.map(|v| (v.codecs.clone(), str0m_direction(v.direction)));
        self.ask(|reply| Control::Offer { codecs: codecs.to_vec(), video, reply }).await
    }

    /// The browser's answer to [`Self::offer_browser`]: the device codec and
    /// the device's video formats it accepted (none: video refused).
    pub async fn browser_answered(&self, answer: &str) -> anyhow::Result<(DeviceCodec, Vec<VideoCodec>)> {
        self.ask(|reply| Control::Answered { answer: answer.to_string(), reply }).await
    }

    /// Answer a browser's new offer in the running session (re-INVITE,
    /// session refresh): ICE, DTLS and the law stay.
    pub async fn reanswer_browser(&self, offer: &str) -> anyhow::Result<String> {
        self.ask(|reply| Control::Reanswer { offer: offer.to_string(), reply }).await
    }

    /// A new offer for the browser when the device re-INVITEs (hold,
    /// resume, refresh); its answer goes to [`Self::browser_answered`].
    pub async fn reoffer_browser(&self, direction: str0m::media::Direction, video: Option<str0m::media::Direction>) -> anyhow::Result<String> {
        self.ask(|reply| Control::Reoffer { direction, video, reply }).await
    }

    /// Where the SIP device receives RTP (from its SDP); the first RTP it
    /// sends moves this to its real source (symmetric RTP, NAT).
    pub fn set_device_peer(&self, rtp: SocketAddr) {
        let _ = self.control.send(Control::DevicePeer(rtp));
    }

    /// Where the device receives video RTP and RTCP (from its SDP); its
    /// first packets move these to their real sources.
    pub fn set_device_video_peer(&self, rtp: SocketAddr, rtcp: SocketAddr) {
        let _ = self.control.send(Control::DeviceVideoPeer(rtp, rtcp));
    }

    /// The host the device's signalling came from (its NAT's public
    /// address): besides its SDP's host, the only one its media may come
    /// from. None: its SDP's host alone.
    pub fn set_device_signalling_host(&self, host: Option<IpAddr>) {
        let _ = self.control.send(Control::DeviceHost(host));
    }

    /// The device's RFC 4733 payload type and clock rate (from its SDP);
    /// None when it has none.
    pub fn set_device_telephone_event(&self, event: Option<(u8, u32)>) {
        let _ = self.control.send(Control::TelephoneEvent(event));
    }

    /// `true`: the browser previews a ringing call (it receives the
    /// device's media, the device gets nothing of the browser's); `false`
    /// once it answered. Sent before its answer, so it is in force first.
    pub fn set_preview(&self, on: bool) {
        let _ = self.control.send(Control::Preview(on));
    }

    /// Send a key press to the device as RFC 4733 events.
    pub fn send_dtmf(&self, digit: char) {
        let _ = self.control.send(Control::SendDtmf(digit));
    }

    /// Key presses (RFC 4733) the device sent; can be taken once.
    pub fn take_dtmf_events(&mut self) -> Option<mpsc::UnboundedReceiver<char>> {
        self.dtmf.take()
    }

    /// Resolves once no media flowed either way for the timeout, the browser
    /// stopped its ICE checks (tab closed), or the task ended.
    pub async fn timed_out(&self) {
        let mut timed_out = self.timed_out.clone();
        let _ = timed_out.wait_for(|t| *t).await;
    }
}

/// The SDP model's direction as str0m's.
pub fn str0m_direction(d: crate::media::sdp::Direction) -> str0m::media::Direction {
    use crate::media::sdp::Direction as D;
    match d {
        D::SendRecv => str0m::media::Direction::SendRecv,
        D::SendOnly => str0m::media::Direction::SendOnly,
        D::RecvOnly => str0m::media::Direction::RecvOnly,
        D::Inactive => str0m::media::Direction::Inactive,
    }
}
