//! Video across the bridge on loopback: a full str0m peer (RTP mode) stands
//! in for the browser, plain UDP sockets for a video doorbell. Packets must
//! arrive byte for byte with only the payload type changed, each way, and
//! the browser's keyframe requests must reach the device's RTCP port as
//! PLI / FIR naming the device's SSRC.
use crate::media::rtp::{self, RtpWriter};
use super::{DeviceVideo, VideoCodec, VideoFormat, G711};
use crate::media::sdp::Direction as SdpDirection;
use crate::media::{MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FROM_BROWSER: u8 = 0x33;
const FROM_DEVICE: u8 = 0x44;
const DEVICE_SSRC: u32 = 0x0d00_0be1;
const DEVICE_VP8: u8 = 100;
/// The bridge numbers the device's formats from 96 in its order: H.264 96, VP8 97.
const BROWSER_VP8: u8 = 97;

#[derive(Default)]
struct Seen {
    connected: bool,
    /// Video packets from the device, unchanged, with the browser's pt and the marker kept.
    video: usize,
    video_pt: Option<u8>,
    markers: usize,
}

fn drain(rtc: &mut Rtc, socket: &UdpSocket, seen: &mut Seen) -> Instant {
    loop {
        match rtc.poll_output().unwrap() {
            Output::Timeout(t) => return t,
            Output::Transmit(t) => {
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Output::Event(Event::Connected) => seen.connected = true,
            Output::Event(Event::RtpPacket(p)) if p.payload.iter().all(|b| *b == FROM_DEVICE) && p.payload.len() == 900 => {
                seen.video += 1;
                seen.video_pt = Some(*p.header.payload_type);
                seen.markers += usize::from(p.header.marker);
            }
            Output::Event(_) => {}
        }
    }
}


#[tokio::test]
async fn video_crosses_relabelled_and_keyframe_requests_reach_the_device() {
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (39840, 39855), timeout: Duration::from_secs(5) }).unwrap();
    let bridge = engine.create_webrtc_bridge().await.unwrap();
    let (device_video, device_rtcp) = (UdpSocket::bind((LOCAL, 0)).await.unwrap(), UdpSocket::bind((LOCAL, 0)).await.unwrap());
    let bridge_video = SocketAddr::new(LOCAL, bridge.video_port());

    // The doorbell offers H.264 first, then VP8; this browser has only VP8.
    let h264 = VideoCodec { device_pt: 99, format: VideoFormat::H264, fmtp: Some("packetization-mode=1;profile-level-id=42e01f".into()) };
    let vp8 = VideoCodec { device_pt: DEVICE_VP8, format: VideoFormat::Vp8, fmtp: None };
    let video = DeviceVideo { index: 1, codecs: vec![h264, vp8.clone()], direction: SdpDirection::SendRecv };
    // As a call does: the device's addresses come with its offer, before the browser answers.
    bridge.set_device_video_peer(device_video.local_addr().unwrap(), device_rtcp.local_addr().unwrap());
    let offer = bridge.offer_browser(&[G711::Pcmu.into()], Some(&video)).await.unwrap();
    let bundle = offer.lines().find(|l| l.starts_with("a=group:BUNDLE ")).unwrap_or_default();
    assert_eq!(bundle.split(' ').count(), 3, "audio and video on one transport: {offer}");
    assert!(offer.contains("a=fmtp:96 ") && offer.contains("profile-level-id=42e01f"), "the device's H.264 profile is offered: {offer}");

    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new().clear_codecs().enable_pcmu(true, false).enable_vp8(true).set_rtp_mode(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&offer).unwrap()).unwrap();
    let mid: Mid = answer.media_lines[1].mid(); // BUNDLE order: audio, video
    let (law, accepted) = bridge.browser_answered(&answer.to_sdp_string()).await.unwrap();
    assert_eq!((law, accepted), (G711::Pcmu.into(), vec![vp8]), "only what the browser accepted goes back to the device");

    let mut seen = Seen::default();
    let mut writer = RtpWriter::new(DEVICE_SSRC, 1);
    let (mut buf, mut vbuf, mut rbuf, mut out) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 2048], Vec::new());
    let (mut device_heard, mut wrong_pt, mut requests) = (0usize, 0usize, Vec::new());
    let (mut ts, mut seq, mut asked) = (0u32, 1000u64, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && !(seen.video > 30 && device_heard > 30 && requests.len() >= 2) {
        let deadline = drain(&mut rtc, &socket, &mut seen);
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let (n, src) = got.unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), Receive::new(Protocol::Udp, src, addr, &buf[..n]).unwrap())).unwrap();
            }
            got = device_video.recv_from(&mut vbuf) => {
                let p = rtp::parse(&vbuf[..got.unwrap().0]).unwrap();
                if p.payload_type != DEVICE_VP8 { wrong_pt += 1 } else if p.payload.iter().all(|b| *b == FROM_BROWSER) { device_heard += 1 }
            }
            got = device_rtcp.recv_from(&mut rbuf) => requests.push(rbuf[..got.unwrap().0].to_vec()),
            _ = tick.tick() => {
                // A 90 kHz frame in two packets, the marker on the last.
                ts = ts.wrapping_add(3000);
                for last in [false, true] {
                    writer.write(DEVICE_VP8, ts, last, &[FROM_DEVICE; 900], &mut out);
                    device_video.send_to(&out, bridge_video).await.unwrap();
                }
                if seen.connected {
                    let mut api = rtc.direct_api();
                    let tx = api.stream_tx_by_mid(mid, None).unwrap();
                    tx.write_rtp(RtpWrite::new(BROWSER_VP8.into(), seq.into(), ts, Instant::now(), vec![FROM_BROWSER; 500]).marker(true));
                    seq += 1;
                }
                if seen.video > 10 && asked < 2 && requests.len() == asked {
                    let kind = if asked == 0 { KeyframeRequestKind::Pli } else { KeyframeRequestKind::Fir };
                    rtc.direct_api().stream_rx_by_mid(mid, None).unwrap().request_keyframe(kind);
                    asked += 1;
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
    }
    assert!(seen.connected);
    assert!(seen.video > 30, "browser got {} device video packets unchanged", seen.video);
    assert_eq!(seen.video_pt, Some(BROWSER_VP8), "relabelled to the browser's VP8 payload type");
    assert!(seen.markers * 2 >= seen.video - 1, "frame ends kept: {} of {}", seen.markers, seen.video);
    assert!(device_heard > 30 && wrong_pt == 0, "device got {device_heard} browser packets ({wrong_pt} under another pt)");
    assert_eq!(requests.len(), 2, "one PLI, one FIR: {requests:?}");
    let (pli, fir) = (&requests[0], &requests[1]);
    assert_eq!((pli[0] & 0x1f, pli[1]), (1, 206), "PLI: PSFB, FMT 1");
    assert_eq!(&pli[8..12], &DEVICE_SSRC.to_be_bytes(), "the PLI names the device's stream");
    assert_eq!((fir[0] & 0x1f, fir[1]), (4, 206), "FIR: PSFB, FMT 4");
    assert_eq!(&fir[12..16], &DEVICE_SSRC.to_be_bytes(), "the FIR names the device's stream");
}
