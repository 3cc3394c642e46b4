//! The `bridge_session` fuzz harness (fuzz/, [`super::fuzz_session`]): a
//! whole bridge core that answered a Chromium offer, a browser that passed
//! our ICE check, and a sequence of datagrams from the fuzzer.
//!
//! The browser's check is a STUN binding request signed with the answer's
//! ICE password (str0m's own STUN code), so what the fuzzer then sends from
//! the browser's address reaches str0m's DTLS and SRTP, as a signed-in
//! user's own client could. Strangers stay in the mix: the same datagrams
//! from addresses that did not pass the check must stop at the core.
use super::core::{BridgeCore, Input};
use super::G711;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::ice::{StunMessageBuilder, TransId};

/// A real Chromium 156 offer, made with `setCodecPreferences` (PCMU, PCMA and
/// telephone-event; H.264 42e01f only), as a page that knows the PBX's codecs
/// sends it: 65 lines where the full offer has 161. str0m's SDP parser took
/// three quarters of each input's time with the full one; that parser has
/// the `sdp` target of its own, and this target is about the datagrams.
const OFFER: &str = include_str!("testdata/chromium156_g711_h264_offer.sdp");
/// Where the browser sends from once it passed the check.
pub(super) const BROWSER: ([u8; 4], u16) = ([127, 0, 0, 1], 50000);

pub(super) struct Harness {
    pub(super) core: BridgeCore,
    pub(super) now: Instant,
    device: SocketAddr,
    /// Datagrams the core sent to the browser's address (tests look).
    #[cfg(test)]
    pub(super) to_browser: Vec<Vec<u8>>,
}

impl Harness {
    /// The core answers the offer (PCMU or PCMA device by `law`'s low bit)
    /// and the browser's signed check arrives. None if the answer fails.
    pub(super) fn new(law: u8) -> Option<Harness> {
        let now = Instant::now();
        let mut core = BridgeCore::new(([127, 0, 0, 1], 40000).into(), Duration::from_secs(5), now);
        let law = if law & 1 == 0 { G711::Pcmu } else { G711::Pcma };
        let (answer, _) = core.answer(now, OFFER, &[law.into()], Vec::new()).ok()?;
        let device: SocketAddr = ([127, 0, 0, 1], 4000).into();
        core.set_device_peer(now, device);
        core.set_device_video_peer(now, ([127, 0, 0, 1], 4010).into(), ([127, 0, 0, 1], 4011).into());
        core.set_device_telephone_event(now, Some((101, 8000)));
        core.set_device_host(Some(([10, 0, 0, 1]).into()));
        let mut harness = Harness { core, now, device, #[cfg(test)] to_browser: Vec::new() };
        let check = ice_check(OFFER, &answer)?;
        harness.core.handle_input(Input::Browser { at: now, source: BROWSER.into(), packet: &check });
        harness.drain();
        Some(harness)
    }

    /// `[kind, len, bytes…]` datagrams. kind: low two bits device audio /
    /// browser datagram / device video RTCP / key press and timer; bits 2-3
    /// the source (0: the browser for a browser datagram and the device
    /// otherwise; 1-3: strangers); top four bits 5 ms steps of the clock.
    pub(super) fn feed(&mut self, mut rest: &[u8]) {
        let strangers: [SocketAddr; 3] = [([192, 0, 2, 66], 4000).into(), ([127, 0, 0, 1], 4002).into(), ([10, 0, 0, 1], 5000).into()];
        while let [kind, len, tail @ ..] = rest {
            let n = (*len as usize).min(tail.len());
            let (packet, next) = tail.split_at(n);
            rest = next;
            self.now += Duration::from_millis(u64::from(*kind >> 4) * 5);
            let now = self.now;
            let source = match ((kind >> 2) & 3, kind % 4) {
                (0, 1) => BROWSER.into(),
                (0, _) => self.device,
                (i, _) => strangers[usize::from(i) - 1],
            };
            match kind % 4 {
                0 => self.core.handle_input(Input::DeviceAudio { at: now, source, packet }),
                1 => self.core.handle_input(Input::Browser { at: now, source, packet }),
                2 => self.core.handle_input(Input::DeviceVideoRtcp { at: now, source, packet }),
                _ => {
                    if let Some(&digit) = packet.first() {
                        self.core.send_dtmf(now, digit as char);
                    }
                    self.core.handle_input(Input::Timeout(now));
                }
            }
            self.drain();
            let _ = (self.core.poll_timeout(now), self.core.is_timed_out(now));
        }
    }

    fn drain(&mut self) {
        while let Some(_out) = self.core.poll_output() {
            #[cfg(test)]
            if let super::core::Output::Send { from: super::core::Socket::Browser, to, packet } = _out
                && to == BROWSER.into()
            {
                self.to_browser.push(packet);
            }
        }
    }
}

/// The browser's ICE connectivity check (RFC 8445 7.2.2): a binding request
/// from the controlling side, nominating (USE-CANDIDATE), with USERNAME
/// `answer-ufrag:offer-ufrag` and MESSAGE-INTEGRITY under the answer's
/// password, FINGERPRINT last.
pub(super) fn ice_check(offer: &str, answer: &str) -> Option<Vec<u8>> {
    let attr = |sdp: &str, key: &str| sdp.lines().find_map(|l| l.trim_end().strip_prefix(key).map(str::to_owned));
    let (ufrag, pwd) = (attr(answer, "a=ice-ufrag:")?, attr(answer, "a=ice-pwd:")?);
    let username = format!("{ufrag}:{}", attr(offer, "a=ice-ufrag:")?);
    let check = StunMessageBuilder::new().binding().request().username(&username).prio(2_113_937_151).use_candidate().ice_controlling(0x5eed).build(TransId::new());
    let hmac = str0m::crypto::from_feature_flags().sha1_hmac_provider;
    let mut buf = vec![0; 512];
    let n = check.to_bytes(Some(pwd.as_bytes()), &mut buf, |key, parts| hmac.sha1_hmac(key, parts)).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real DTLS 1.2 ClientHello (OpenSSL 3.0's s_client with use_srtp),
    /// as a browser sends it first after ICE.
    const CLIENT_HELLO: &[u8] = include_bytes!("testdata/dtls12_client_hello.bin");
    /// fuzz/regressions/bridge_session-dtls-from-a-stranger
    const DUPLICATE_RECORDS: &[u8] = include_bytes!("../../../fuzz/regressions/bridge_session-dtls-from-a-stranger");

    fn is_stun(p: &[u8]) -> bool {
        p.first().is_some_and(|&b| b <= 3)
    }

    fn is_dtls(p: &[u8]) -> bool {
        p.first().is_some_and(|&b| (20..=63).contains(&b))
    }

    #[test]
    fn the_harness_passes_ice_and_reaches_dtls() {
        let mut h = Harness::new(0).unwrap();
        assert_eq!(h.to_browser.len(), 1, "one binding response to the check");
        assert!(is_stun(&h.to_browser[0]));
        // [kind 1 (browser datagram, source 0: the browser), len, ClientHello]
        let mut input = vec![0x01, CLIENT_HELLO.len() as u8];
        input.extend_from_slice(CLIENT_HELLO);
        h.feed(&input);
        let dtls = h.to_browser.iter().filter(|p| is_dtls(p)).count();
        assert!(dtls >= 1, "str0m answered the ClientHello: {} datagrams, {dtls} DTLS", h.to_browser.len());
        assert_eq!(h.core.dropped_untrusted(), 0);
    }

    #[test]
    fn a_strangers_client_hello_stops_at_the_core() {
        let mut h = Harness::new(0).unwrap();
        // the same ClientHello from each stranger (source 1-3)
        let mut input = Vec::new();
        for source in 1..=3u8 {
            input.extend_from_slice(&[0x01 | source << 2, CLIENT_HELLO.len() as u8]);
            input.extend_from_slice(CLIENT_HELLO);
        }
        h.feed(&input);
        assert_eq!(h.to_browser.len(), 1, "only the binding response");
        assert_eq!(h.core.dropped_untrusted(), 3);
    }

    /// The fuzzer's input that panicked dimpl 0.7.6: the same epoch-1
    /// record twice, before the peer's ChangeCipherSpec. The harness sends
    /// its browser datagrams from the address that passed ICE, so they reach
    /// dimpl (vendor/dimpl/HA-PBX-PATCH.md).
    #[test]
    fn the_fuzzers_duplicate_records_from_a_validated_browser_do_not_panic() {
        super::super::fuzz_session(DUPLICATE_RECORDS);
        let mut h = Harness::new(DUPLICATE_RECORDS[0]).unwrap();
        h.feed(&DUPLICATE_RECORDS[1..]);
        let validated = h.core.dropped_untrusted(); // the device port's
        // The same input with the browser's datagrams from a stranger: the
        // core drops all but STUN (src/media/webrtc/core.rs, `browser_peers`).
        let mut input = DUPLICATE_RECORDS[1..].to_vec();
        let (mut i, mut moved) = (0, 0);
        while i + 1 < input.len() {
            let n = usize::from(input[i + 1]).min(input.len() - i - 2);
            if input[i] & 0x0f == 0x01 {
                input[i] |= 0x04;
                moved += u64::from(input.get(i + 2).is_none_or(|&b| b > 3) || n == 0);
            }
            i += 2 + n;
        }
        let mut h = Harness::new(DUPLICATE_RECORDS[0]).unwrap();
        h.feed(&input);
        assert!(moved >= 4);
        assert_eq!(h.core.dropped_untrusted() - validated, moved);
    }

    /// The same two records, bare, from the validated browser in the middle
    /// of a handshake it started: dimpl drops the second.
    #[test]
    fn a_validated_browser_repeating_an_epoch_1_record_is_not_fatal() {
        let mut h = Harness::new(0).unwrap();
        let record = [0x16, 0xfe, 0xfd, 0x00, 0x01, 0, 0, 0x08, 0, 0, 0, 0, 0];
        let mut input = vec![0x01, CLIENT_HELLO.len() as u8];
        input.extend_from_slice(CLIENT_HELLO);
        for _ in 0..2 {
            input.extend_from_slice(&[0x01, record.len() as u8]);
            input.extend_from_slice(&record);
        }
        h.feed(&input);
        assert!(!h.core.is_timed_out(h.now), "the session is alive");
    }
}
