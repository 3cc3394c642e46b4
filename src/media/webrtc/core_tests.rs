//! The bridge core with two in-memory peers and virtual time: a full (not
//! lite) str0m `Rtc` stands in for the browser, a list of datagrams for the
//! SIP device. No sockets, no sleeps: every packet and every tick of the
//! clock is handed over here, so what happens at second 59 of a silence is
//! tested in microseconds.
use super::core::{BridgeCore, Input, Output, Socket};
use crate::media::rtp::{self, RtpWriter};
use super::G711;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Output as RtcOutput, Rtc, RtcConfig};

const FROM_BROWSER: u8 = 0x11;
const FROM_DEVICE: u8 = 0x22;
const FROM_STRANGER: u8 = 0x66;
const TIMEOUT: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(20);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The bridge, a browser, a device and a shared virtual clock.
struct World {
    now: Instant,
    core: BridgeCore,
    browser: Rtc,
    browser_addr: SocketAddr,
    mid: Mid,
    browser_next: Instant,
    connected: bool,
    /// Audio payloads the browser received.
    heard_by_browser: Vec<Vec<u8>>,
    /// Datagrams the bridge sent toward the device side: (socket, to, packet).
    to_device: Vec<(Socket, SocketAddr, Vec<u8>)>,
    /// Key presses the bridge reported from the device.
    keys_from_device: Vec<char>,
    device: RtpWriter,
    device_ts: u32,
}

const CANDIDATE: &str = "127.0.0.1:40000";
const DEVICE: &str = "127.0.0.1:30000";

impl World {
    /// A PCMU browser offers, the bridge answers for a PCMU device with
    /// telephone-event 101, and the device's SDP names `DEVICE`.
    fn new() -> World {
        let now = Instant::now();
        let mut core = BridgeCore::new(addr(CANDIDATE), TIMEOUT, now);
        let browser_addr = addr("127.0.0.1:50000");
        let mut browser = RtcConfig::new().clear_codecs().enable_pcmu(true, false).build(now);
        browser.add_local_candidate(Candidate::host(browser_addr, "udp").unwrap());
        let mut change = browser.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let (answer, codec) = core.answer(now, &offer.to_sdp_string(), &[G711::Pcmu.into()], Vec::new()).unwrap();
        assert_eq!(codec, G711::Pcmu.into());
        browser.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
        core.set_device_peer(now, addr(DEVICE));
        core.set_device_telephone_event(now, Some((101, 8000)));
        World {
            now,
            core,
            browser,
            browser_addr,
            mid,
            browser_next: now,
            connected: false,
            heard_by_browser: Vec::new(),
            to_device: Vec::new(),
            keys_from_device: Vec::new(),
            device: RtpWriter::new(7, 1),
            device_ts: 0,
        }
    }

    /// Moves every datagram between the browser and the bridge until both
    /// are quiet at the current time.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            loop {
                match self.browser.poll_output().unwrap() {
                    RtcOutput::Timeout(t) => {
                        self.browser_next = t;
                        break;
                    }
                    RtcOutput::Transmit(t) => {
                        moved = true;
                        self.core.handle_input(Input::Browser { at: self.now, source: t.source, packet: &t.contents });
                    }
                    RtcOutput::Event(Event::Connected) => self.connected = true,
                    RtcOutput::Event(Event::MediaData(d)) => self.heard_by_browser.push(d.data.to_vec()),
                    RtcOutput::Event(_) => {}
                }
            }
            while let Some(output) = self.core.poll_output() {
                moved = true;
                match output {
                    Output::Send { from: Socket::Browser, to, packet } => {
                        assert_eq!(to, self.browser_addr);
                        let receive = Receive::new(Protocol::Udp, self.core.candidate(), to, &packet).unwrap();
                        self.browser.handle_input(str0m::Input::Receive(self.now, receive)).unwrap();
                    }
                    Output::Send { from, to, packet } => self.to_device.push((from, to, packet)),
                    Output::Dtmf(key) => self.keys_from_device.push(key),
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Advances the clock to `until`, waking each side when it asked to.
    fn run_until(&mut self, until: Instant) {
        loop {
            self.settle();
            let next = self.browser_next.min(self.core.poll_timeout(self.now)).max(self.now);
            if next > until {
                self.now = until;
                return;
            }
            self.now = next;
            self.browser.handle_input(str0m::Input::Timeout(self.now)).unwrap();
            self.core.handle_input(Input::Timeout(self.now));
        }
    }

    fn connect(&mut self) {
        let limit = self.now + Duration::from_secs(5);
        while !self.connected && self.now < limit {
            let step = self.now + Duration::from_millis(5);
            self.run_until(step);
        }
        assert!(self.connected, "ICE-lite + DTLS-SRTP with a full ICE peer, in virtual time");
    }

    /// One 20 ms packet from `from` to the bridge's device port.
    fn device_sends(&mut self, from: SocketAddr, fill: u8) {
        self.device_ts = self.device_ts.wrapping_add(160);
        let mut packet = Vec::new();
        self.device.write(0, self.device_ts, false, &[fill; 160], &mut packet);
        self.core.handle_input(Input::DeviceAudio { at: self.now, source: from, packet: &packet });
    }

    fn browser_sends(&mut self, fill: u8) {
        let time = MediaTime::new(u64::from(self.device_ts), Frequency::new(8000).unwrap());
        let pt = self.browser.media(self.mid).unwrap().remote_pts()[0];
        let writer = self.browser.writer(self.mid).unwrap();
        writer.write(pt, self.now, time, vec![fill; 160]).unwrap();
    }

    /// `ticks` of 20 ms, each carrying one packet from `device` (if any)
    /// and one from the browser (if `browser`).
    fn talk(&mut self, ticks: usize, device: Option<SocketAddr>, browser: bool) {
        for _ in 0..ticks {
            if let Some(from) = device {
                self.device_sends(from, FROM_DEVICE);
            }
            if browser {
                self.browser_sends(FROM_BROWSER);
            }
            let next = self.now + TICK;
            self.run_until(next);
        }
    }

    fn device_audio(&self) -> Vec<(SocketAddr, u8, Vec<u8>)> {
        (self.to_device.iter().filter(|(s, ..)| *s == Socket::DeviceAudio))
            .map(|(_, to, p)| {
                let v = rtp::parse(p).unwrap();
                (*to, v.payload_type, v.payload.to_vec())
            })
            .collect()
    }
}

#[test]
fn audio_crosses_both_ways_once_dtls_is_up() {
    let mut w = World::new();
    w.device_sends(addr(DEVICE), FROM_DEVICE);
    w.settle();
    assert!(w.heard_by_browser.is_empty(), "nothing is written before DTLS-SRTP is up");
    w.connect();
    w.talk(50, Some(addr(DEVICE)), true);
    let heard = w.heard_by_browser.iter().filter(|p| p.iter().all(|b| *b == FROM_DEVICE)).count();
    assert!(heard >= 45, "the browser got {heard} of 50 device packets, unchanged");
    let audio = w.device_audio();
    let unchanged = audio.iter().filter(|(to, pt, p)| *to == addr(DEVICE) && *pt == 0 && p.iter().all(|b| *b == FROM_BROWSER)).count();
    assert!(unchanged >= 45, "the device got {unchanged} of 50 browser packets at its SDP address: {audio:?}");
}

/// RTP bleed: a stranger who sends to the device port first (or after the
/// device fell silent) is neither heard by the browser nor sent the
/// browser's audio; the device still is.
#[test]
fn a_stranger_on_the_device_port_neither_hears_nor_is_heard() {
    let mut w = World::new();
    w.connect();
    let stranger = addr("192.0.2.66:5004");
    for _ in 0..20 {
        w.core.handle_input(Input::DeviceAudio { at: w.now, source: stranger, packet: &stranger_packet() });
        w.browser_sends(FROM_BROWSER);
        let next = w.now + TICK;
        w.run_until(next);
    }
    assert!(!w.heard_by_browser.iter().any(|p| p.contains(&FROM_STRANGER)), "the stranger was heard");
    assert!(w.device_audio().iter().all(|(to, ..)| *to == addr(DEVICE)), "the browser's audio went elsewhere");
    assert_eq!(w.core.dropped_untrusted(), 20);
    // The device speaks, falls silent for 10 s; the stranger tries again.
    w.talk(10, Some(addr(DEVICE)), true);
    let later = w.now + Duration::from_secs(10);
    w.run_until(later);
    w.core.handle_input(Input::DeviceAudio { at: w.now, source: stranger, packet: &stranger_packet() });
    w.talk(5, None, true);
    assert!(!w.heard_by_browser.iter().any(|p| p.contains(&FROM_STRANGER)));
    assert!(w.device_audio().iter().all(|(to, ..)| *to == addr(DEVICE)));
}

fn stranger_packet() -> Vec<u8> {
    let mut packet = Vec::new();
    RtpWriter::new(666, 1).write(0, 160, false, &[FROM_STRANGER; 160], &mut packet);
    packet
}

/// A device behind NAT: its SDP names a private address, its RTP comes
/// from the address its SIP came from. The bridge latches there, and
/// sends there.
#[test]
fn a_device_behind_nat_is_latched_at_its_signalling_host() {
    let mut w = World::new();
    let private = addr("10.0.0.5:4000");
    let public = addr("203.0.113.7:61000");
    w.core.set_device_peer(w.now, private);
    w.connect();
    w.talk(5, Some(public), true);
    assert!(w.heard_by_browser.is_empty(), "not before signalling named the host");
    w.core.set_device_host(Some(public.ip()));
    w.to_device.clear();
    w.talk(20, Some(public), true);
    assert!(w.heard_by_browser.len() >= 15, "heard {}", w.heard_by_browser.len());
    let audio = w.device_audio();
    assert!(!audio.is_empty() && audio.iter().all(|(to, ..)| *to == public), "{audio:?}");
}

/// A key pressed in the browser goes to the device as RFC 4733 events
/// paced on the clock (not in one burst), replacing the audio while it
/// plays; the device's own key press is reported.
#[test]
fn key_presses_are_paced_in_time_both_ways() {
    let mut w = World::new();
    w.connect();
    w.talk(5, Some(addr(DEVICE)), true);
    w.to_device.clear();
    let pressed = w.now;
    w.core.send_dtmf(w.now, '5');
    w.talk(3, Some(addr(DEVICE)), true); // 60 ms
    let events = |w: &World| w.device_audio().into_iter().filter(|(_, pt, _)| *pt == 101).map(|(.., p)| p).collect::<Vec<_>>();
    let early = events(&w);
    assert!(!early.is_empty() && early.iter().all(|e| e[0] == 5 && e[1] & 0x80 == 0), "the press started, not yet ended: {early:?}");
    w.talk(20, Some(addr(DEVICE)), true); // 460 ms in all
    let all = events(&w);
    let ends: Vec<_> = all.iter().filter(|e| e[1] & 0x80 != 0).collect();
    assert!(ends.len() >= 3, "an end is sent three times: {all:?}");
    assert_eq!(u16::from_be_bytes([ends[0][2], ends[0][3]]), 160 * 8, "160 ms at 8 kHz");
    assert!(w.now.duration_since(pressed) < Duration::from_millis(500));
    let audio_during = w.device_audio().iter().filter(|(_, pt, _)| *pt == 0).count();
    assert!(audio_during < 23, "the press replaced some audio ({audio_during} packets)");

    // The device presses 9: a start, then three ends.
    for end in [false, true, true, true] {
        let mut packet = Vec::new();
        w.device.write(101, w.device_ts, !end, &[9, if end { 0x8a } else { 0x0a }, 0, 160], &mut packet);
        w.core.handle_input(Input::DeviceAudio { at: w.now, source: addr(DEVICE), packet: &packet });
    }
    w.settle();
    assert_eq!(w.keys_from_device, vec!['9']);
}

/// Door preview: while the browser previews a ringing call it hears the
/// device, and the device gets nothing of the browser (audio or key
/// presses), though the browser sends; once it answered, both ways.
#[test]
fn a_previewing_browser_hears_the_device_and_is_not_heard() {
    let mut w = World::new();
    w.core.set_preview(true);
    w.connect();
    w.talk(50, Some(addr(DEVICE)), true);
    w.core.send_dtmf(w.now, '1');
    w.talk(20, Some(addr(DEVICE)), true);
    let heard = w.heard_by_browser.iter().filter(|p| p.iter().all(|b| *b == FROM_DEVICE)).count();
    assert!(heard >= 60, "the previewing browser got {heard} of 70 device packets");
    assert!(w.device_audio().is_empty(), "the device got the previewing browser's packets: {:?}", w.device_audio());
    assert!(w.core.dropped_preview() >= 60, "held back: {}", w.core.dropped_preview());

    w.core.set_preview(false);
    w.talk(50, Some(addr(DEVICE)), true);
    let unchanged = w.device_audio().iter().filter(|(to, pt, p)| *to == addr(DEVICE) && *pt == 0 && p.iter().all(|b| *b == FROM_BROWSER)).count();
    assert!(unchanged >= 45, "after the answer the device got {unchanged} of 50 browser packets");
}

/// A stranger's RFC 4733 packets are no key press.
#[test]
fn a_strangers_key_press_is_ignored() {
    let mut w = World::new();
    w.connect();
    let mut packet = Vec::new();
    RtpWriter::new(666, 1).write(101, 160, true, &[1, 0x8a, 0, 160], &mut packet);
    w.core.handle_input(Input::DeviceAudio { at: w.now, source: addr("192.0.2.66:5004"), packet: &packet });
    w.settle();
    assert!(w.keys_from_device.is_empty());
}

/// The media timeout in virtual time: media in either direction keeps the
/// call alive; silence for the timeout ends it, and not a tick before.
#[test]
fn silence_times_out_after_the_timeout_and_not_before() {
    let mut w = World::new();
    w.connect();
    w.talk(500, Some(addr(DEVICE)), false); // 10 s of device audio, longer than the timeout
    assert!(!w.core.is_timed_out(w.now));
    w.talk(500, None, true); // 10 s of browser audio only
    assert!(!w.core.is_timed_out(w.now));
    let last_media = w.now - TICK;
    // The browser side goes quiet; str0m keeps ICE alive on its own.
    let almost = last_media + TIMEOUT - Duration::from_millis(100);
    w.run_until(almost);
    assert!(!w.core.is_timed_out(w.now), "timed out early");
    let past = last_media + TIMEOUT + Duration::from_millis(100);
    w.run_until(past);
    assert!(w.core.is_timed_out(w.now), "silence of {:?} not detected", w.now - last_media);
}

/// A ringing call: silence before the answer is not a timeout, since each
/// piece of signalling restarts the clock.
#[test]
fn signalling_restarts_the_silence_clock() {
    let mut w = World::new();
    let ring = w.now + TIMEOUT - Duration::from_secs(1);
    w.run_until(ring);
    w.core.set_device_peer(w.now, addr(DEVICE));
    let later = w.now + TIMEOUT - Duration::from_secs(1);
    w.run_until(later);
    assert!(!w.core.is_timed_out(w.now));
}

/// The browser vanishes (tab closed, network gone): with no more ICE
/// checks str0m declares it disconnected, well before the media timeout
/// would, and the bridge reports the call dead.
#[test]
fn a_browser_that_vanishes_is_dead() {
    let mut w = World::new();
    w.connect();
    w.talk(10, Some(addr(DEVICE)), true);
    assert!(!w.core.is_timed_out(w.now));
    // From now on nothing reaches the bridge from the browser; the device keeps talking.
    let gone = w.now;
    let mut packet = Vec::new();
    while !w.core.is_timed_out(w.now) && w.now < gone + Duration::from_secs(60) {
        w.device_ts = w.device_ts.wrapping_add(160);
        w.device.write(0, w.device_ts, false, &[FROM_DEVICE; 160], &mut packet);
        w.core.handle_input(Input::DeviceAudio { at: w.now, source: addr(DEVICE), packet: &packet });
        while w.core.poll_output().is_some() {} // the browser hears nothing more, says nothing more
        w.now += TICK;
        w.core.handle_input(Input::Timeout(w.now));
    }
    assert!(w.core.is_timed_out(w.now), "still alive 60 s after the browser went away");
    let took = w.now - gone;
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// DTLS, SRTP or anything but STUN on the browser port from an address that
/// never passed an ICE check (our ICE password) is dropped before str0m:
/// the browser's call goes on, and the drops are counted.
#[test]
fn a_stranger_on_the_browser_port_is_not_read() {
    let mut w = World::new();
    let stranger = addr("192.0.2.77:5000");
    // A DTLS ClientHello-shaped record before the browser's, then after.
    let dtls = [0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01];
    w.core.handle_input(Input::Browser { at: w.now, source: stranger, packet: &dtls });
    w.connect();
    w.core.handle_input(Input::Browser { at: w.now, source: stranger, packet: &dtls });
    w.core.handle_input(Input::Browser { at: w.now, source: stranger, packet: &stranger_packet() });
    assert_eq!(w.core.dropped_untrusted(), 3);
    w.talk(20, Some(addr(DEVICE)), true);
    let heard = w.heard_by_browser.iter().filter(|p| p.iter().all(|b| *b == FROM_DEVICE)).count();
    assert!(heard >= 15, "the browser got {heard} of 20 device packets after the stranger");
}
