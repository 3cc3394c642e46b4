//! The device side of one bridged video stream: RTP in from the device
//! relabelled with the browser's payload type, the browser's RTP out with
//! the device's, and keyframe requests written as RTCP feedback (PLI, RFC
//! 4585 §6.3.1; FIR, RFC 5104 §4.3.1) on the device's RTCP port.
use crate::media::rtp::RtpWriter;
use crate::media::relay::latch::{Admit, Latch};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub(super) struct VideoPath {
    /// (device pt, browser pt) for each format both sides accepted.
    map: Vec<(u8, u8)>,
    /// Symmetric RTP/RTCP among the hosts signalling named (as the relay's legs).
    rtp: Latch,
    rtcp: Latch,
    /// The device's video SSRC: the media source a keyframe request names.
    pub(super) device_ssrc: Option<u32>,
    writer: RtpWriter,
    /// Our SSRC toward the device, also the sender of our feedback.
    ssrc: u32,
    fir_seq: u8,
    /// Next sequence number toward the browser (str0m's RTP mode wants ours).
    browser_seq: u64,
}

impl VideoPath {
    /// `peer`: the device's video RTP and RTCP addresses, if known yet;
    /// `host`: where the device's signalling came from.
    pub(super) fn new(map: Vec<(u8, u8)>, peer: Option<(SocketAddr, SocketAddr)>, host: Option<IpAddr>) -> Self {
        let ssrc = rand::random();
        let (mut rtp, mut rtcp) = (Latch::default(), Latch::default());
        if let Some((p, c)) = peer {
            rtp.set_peer(p);
            rtcp.set_peer(c);
        }
        rtp.set_signalling_host(host);
        rtcp.set_signalling_host(host);
        VideoPath {
            map,
            rtp,
            rtcp,
            device_ssrc: None,
            writer: RtpWriter::new(ssrc, rand::random()),
            ssrc,
            fir_seq: 0,
            browser_seq: u64::from(rand::random::<u16>()),
        }
    }

    /// The sequence number for the next packet toward the browser.
    pub(super) fn next_browser_seq(&mut self) -> u64 {
        self.browser_seq += 1;
        self.browser_seq - 1
    }

    pub(super) fn browser_pt(&self, device_pt: u8) -> Option<u8> {
        self.map.iter().find(|(d, _)| *d == device_pt).map(|(_, b)| *b)
    }

    pub(super) fn device_pt(&self, browser_pt: u8) -> Option<u8> {
        self.map.iter().find(|(_, b)| *b == browser_pt).map(|(d, _)| *d)
    }

    /// Where the device's SDP says it receives; the next packets it sends
    /// move this to their real source.
    pub(super) fn set_peer(&mut self, rtp: SocketAddr, rtcp: SocketAddr) {
        self.rtp.set_peer(rtp);
        self.rtcp.set_peer(rtcp);
    }

    /// The host the device's signalling came from: it may send video too.
    pub(super) fn set_signalling_host(&mut self, host: Option<IpAddr>) {
        self.rtp.set_signalling_host(host);
        self.rtcp.set_signalling_host(host);
    }

    /// Where the device's video goes: its latched source, else its SDP address.
    pub(super) fn peer(&self) -> Option<SocketAddr> {
        self.rtp.target()
    }

    pub(super) fn rtcp_peer(&self) -> Option<SocketAddr> {
        self.rtcp.target()
    }

    /// A video packet from `source`; false: not from the device, dropped.
    pub(super) fn on_device_rtp(&mut self, source: SocketAddr, ssrc: u32, now: Instant) -> bool {
        if self.rtp.admit(source, now) != Admit::Accept {
            return false;
        }
        self.device_ssrc = Some(ssrc);
        true
    }

    /// An RTCP packet from `source`; false: not from the device, dropped.
    pub(super) fn on_device_rtcp(&mut self, source: SocketAddr, now: Instant) -> bool {
        self.rtcp.admit(source, now) == Admit::Accept
    }

    /// A browser packet relabelled for the device, in `out`.
    pub(super) fn write_for_device(&mut self, device_pt: u8, timestamp: u32, marker: bool, payload: &[u8], out: &mut Vec<u8>) {
        self.writer.write(device_pt, timestamp, marker, payload, out);
    }

    /// A keyframe request for the device's stream; None until it has sent.
    pub(super) fn keyframe_request(&mut self, fir: bool) -> Option<Vec<u8>> {
        let media = self.device_ssrc?;
        if fir {
            self.fir_seq = self.fir_seq.wrapping_add(1);
            return Some(fir_packet(self.ssrc, media, self.fir_seq));
        }
        Some(pli_packet(self.ssrc, media))
    }
}

/// Whether a (compound) RTCP packet from the device asks for a keyframe:
/// `Some(true)` for a FIR, `Some(false)` for a PLI. A device that decodes
/// the browser's camera (or a second bridge, for another browser) asks
/// this way when it joins or loses a picture.
pub fn keyframe_asked(mut rtcp: &[u8]) -> Option<bool> {
    let mut asked = None;
    while rtcp.len() >= 4 && rtcp[0] >> 6 == 2 {
        let len = (usize::from(u16::from_be_bytes([rtcp[2], rtcp[3]])) + 1) * 4;
        if len > rtcp.len() {
            break;
        }
        match (rtcp[1], rtcp[0] & 0x1f) {
            (206, 4) => return Some(true),
            (206, 1) => asked = Some(false),
            _ => {}
        }
        rtcp = &rtcp[len..];
    }
    asked
}

/// RTCP PSFB (206) FMT 1: sender SSRC, media SSRC, no FCI.
pub fn pli_packet(sender: u32, media: u32) -> Vec<u8> {
    let mut p = vec![0x80 | 1, 206, 0, 2];
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p
}

/// RTCP PSFB (206) FMT 4: media SSRC field 0, the target in the FCI with
/// a sequence number that changes per new request.
pub fn fir_packet(sender: u32, media: u32, seq: u8) -> Vec<u8> {
    let mut p = vec![0x80 | 4, 206, 0, 4];
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&media.to_be_bytes());
    p.extend_from_slice(&[seq, 0, 0, 0]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pli_and_fir_follow_the_rfcs() {
        let pli = pli_packet(0x0102_0304, 0x0a0b_0c0d);
        assert_eq!(pli, [0x81, 206, 0, 2, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
        let fir = fir_packet(1, 0x0a0b_0c0d, 7);
        assert_eq!(fir.len(), 4 * (1 + 4), "length field counts 32-bit words minus one");
        assert_eq!(&fir[..4], &[0x84, 206, 0, 4]);
        assert_eq!(&fir[8..12], &[0, 0, 0, 0], "FIR's media SSRC is unused");
        assert_eq!(&fir[12..20], &[0x0a, 0x0b, 0x0c, 0x0d, 7, 0, 0, 0]);
    }

    #[test]
    fn keyframe_asks_are_found_in_compound_rtcp() {
        // a receiver report (201, no blocks) then a PLI; then a FIR alone
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 7];
        let compound: Vec<u8> = rr.iter().copied().chain(pli_packet(7, 9)).collect();
        assert_eq!(keyframe_asked(&compound), Some(false));
        assert_eq!(keyframe_asked(&fir_packet(7, 9, 1)), Some(true));
        assert_eq!(keyframe_asked(&rr), None);
        // a length past the end, and not RTCP at all
        assert_eq!(keyframe_asked(&[0x81, 206, 0, 9, 0, 0]), None);
        assert_eq!(keyframe_asked(b"hello"), None);
    }

    #[test]
    fn keyframe_requests_wait_for_the_device_ssrc_and_count_firs() {
        let device: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut v = VideoPath::new(vec![(100, 96)], Some((device, "127.0.0.1:4001".parse().unwrap())), None);
        assert!(v.keyframe_request(false).is_none(), "no media SSRC to name yet");
        assert!(!v.on_device_rtp("192.0.2.9:4000".parse().unwrap(), 0x0bad_0bad, Instant::now()), "a stranger's video is dropped");
        assert!(v.keyframe_request(false).is_none(), "and names no SSRC");
        assert!(v.on_device_rtp(device, 0xdead_beef, Instant::now()));
        assert_eq!(&v.keyframe_request(false).unwrap()[8..12], &0xdead_beefu32.to_be_bytes());
        let first = v.keyframe_request(true).unwrap();
        let second = v.keyframe_request(true).unwrap();
        assert_ne!(first[16], second[16], "a new FIR has a new sequence number");
        assert_eq!((v.browser_pt(100), v.device_pt(96), v.browser_pt(101)), (Some(96), Some(100), None));
    }
}
