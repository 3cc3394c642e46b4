//! The bridge's media path on loopback, without a browser: a full (not
//! lite) str0m peer stands in for the browser, a plain UDP socket for the SIP
//! device. Payload bytes must arrive unchanged each way, and key presses
//! must cross as RFC 4733 (toward the device) and be detected (from it).
use crate::media::rtp::{self, RtpWriter};
use super::{DeviceCodec, G711};
use crate::media::{MediaConfig, MediaEngine};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FROM_BROWSER: u8 = 0x11;
const FROM_DEVICE: u8 = 0x22;

struct Browser {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    connected: bool,
    heard: usize,
}

impl Browser {
    /// Sends what str0m wants sent; returns when it next wants time.
    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) if d.data.iter().all(|b| *b == FROM_DEVICE) => self.heard += 1,
                Output::Event(_) => {}
            }
        }
    }
}

#[tokio::test]
async fn audio_and_key_presses_cross_the_bridge() {
    cross_the_bridge(false, 39820).await;
}

/// A device with only Opus: the browser's Opus reaches it under the
/// device's payload type and back, and key presses go on its 48 kHz clock.
#[tokio::test]
async fn opus_passes_through_to_a_device_that_has_only_opus() {
    cross_the_bridge(true, 39940).await;
}

async fn cross_the_bridge(opus: bool, first_port: u16) {
    // Device side: its payload type, codec, clock; the browser's payload type.
    let (device_pt, codec, clock, browser_pt): (u8, DeviceCodec, u32, u8) =
        if opus { (96, DeviceCodec::Opus(96), 48_000, 111) } else { (0, G711::Pcmu.into(), 8000, 0) };
    let step = clock / 50;
    let engine = MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first_port, first_port + 15), timeout: Duration::from_secs(5) }).unwrap();
    let mut bridge = engine.create_webrtc_bridge().await.unwrap();
    let mut device_dtmf = bridge.take_dtmf_events().unwrap();
    let device = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let bridge_plain = SocketAddr::new(LOCAL, bridge.device_port());

    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let config = RtcConfig::new().clear_codecs();
    let config = if opus { config.enable_opus(true, false) } else { config.enable_pcmu(true, false) };
    let mut rtc = config.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let (answer, chosen) = bridge.answer_browser(&offer.to_sdp_string(), &[codec], &[]).await.unwrap();
    assert_eq!(chosen, codec);
    bridge.set_device_peer(device.local_addr().unwrap());
    bridge.set_device_telephone_event(Some((101, clock)));
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    let mut browser = Browser { rtc, socket, addr, connected: false, heard: 0 };

    let mut device_writer = RtpWriter::new(7, 1);
    let (mut buf, mut dbuf, mut out) = (vec![0u8; 2048], vec![0u8; 2048], Vec::new());
    let (mut device_heard, mut key_at_device, mut key_from_device) = (0usize, None, None);
    let mut key_duration = 0u16;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (start, mut ts) = (Instant::now(), 0u32);
    let mut sent_key = false;
    while start.elapsed() < Duration::from_secs(10) {
        let deadline = browser.drain();
        tokio::select! {
            got = browser.socket.recv_from(&mut buf) => {
                let (n, src) = got.unwrap();
                let r = Receive::new(Protocol::Udp, src, browser.addr, &buf[..n]).unwrap();
                browser.rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            }
            got = device.recv_from(&mut dbuf) => {
                let (n, _) = got.unwrap();
                let p = rtp::parse(&dbuf[..n]).unwrap();
                match p.payload_type {
                    pt if pt == device_pt && p.payload.iter().all(|b| *b == FROM_BROWSER) => device_heard += 1,
                    101 if p.payload[1] & 0x80 != 0 => {
                        key_at_device = Some(p.payload[0]);
                        key_duration = u16::from_be_bytes([p.payload[2], p.payload[3]]);
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                ts = ts.wrapping_add(step);
                device_writer.write(device_pt, ts, false, &[FROM_DEVICE; 160], &mut out);
                device.send_to(&out, bridge_plain).await.unwrap();
                if browser.connected {
                    let writer = browser.rtc.writer(mid).unwrap();
                    let time = MediaTime::new(ts as u64, Frequency::new(clock).unwrap());
                    writer.write(browser_pt.into(), Instant::now(), time, vec![FROM_BROWSER; 160]).unwrap();
                }
                if device_heard > 10 && !sent_key {
                    sent_key = true;
                    bridge.send_dtmf('5');
                    // and the device presses 9: start, then three ends
                    for end in [false, true, true, true] {
                        device_writer.write(101, ts, !end, &[9, if end { 0x8a } else { 0x0a }, 0, 160], &mut out);
                        device.send_to(&out, bridge_plain).await.unwrap();
                    }
                }
            }
            Some(d) = device_dtmf.recv() => key_from_device = Some(d),
            _ = tokio::time::sleep_until(deadline.into()) => {
                browser.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
            }
        }
        if browser.heard > 50 && device_heard > 50 && key_at_device.is_some() && key_from_device.is_some() {
            break;
        }
    }
    assert!(browser.connected, "ICE-lite + DTLS-SRTP with a full ICE peer");
    assert!(browser.heard > 50, "browser got {} device frames, unchanged", browser.heard);
    assert!(device_heard > 50, "device got {device_heard} browser frames, unchanged");
    assert_eq!(key_at_device, Some(5), "INFO key press reached the device as RFC 4733");
    assert_eq!(u32::from(key_duration), 160 * clock / 1000, "160 ms on the event's clock");
    assert_eq!(key_from_device, Some('9'), "the device's RFC 4733 key press was detected");
}
