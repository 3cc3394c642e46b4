//! Just enough RTP (RFC 3550) for the streams we originate: read the fixed
//! header of what a device sends, and write packets of our own (one SSRC,
//! our own sequence numbers) toward it. The one RTP writer of the media
//! plane: the WebRTC bridge's plain leg, its video path and the agent's line.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

/// None for anything that is not a well-formed RTP version 2 packet
/// (RTCP included: its "payload types" 200–204 fall in 72–76 once the
/// marker bit is removed, which callers filter by the negotiated codec).
pub fn parse(buf: &[u8]) -> Option<RtpView<'_>> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return None;
    }
    let csrc = (buf[0] & 0x0f) as usize;
    let mut start = 12 + 4 * csrc;
    if buf[0] & 0x10 != 0 {
        let ext = buf.get(start..start + 4)?;
        start += 4 + 4 * u16::from_be_bytes([ext[2], ext[3]]) as usize;
    }
    let mut end = buf.len();
    if buf[0] & 0x20 != 0 {
        let pad = *buf.last()? as usize;
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(RtpView {
        payload_type: buf[1] & 0x7f,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        marker: buf[1] & 0x80 != 0,
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[start..end],
    })
}

/// Where an RTP stream toward a device stands, for another sender to
/// continue it (same SSRC, the next numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    pub ssrc: u32,
    pub last_seq: u16,
    pub last_ts: u32,
}

/// Our side of one outgoing RTP stream.
#[derive(Debug)]
pub struct RtpWriter {
    ssrc: u32,
    sequence: u16,
}

impl RtpWriter {
    pub fn new(ssrc: u32, first_sequence: u16) -> Self {
        RtpWriter { ssrc, sequence: first_sequence }
    }

    /// The SSRC and the last sequence number written.
    pub fn written(&self) -> (u32, u16) {
        (self.ssrc, self.sequence.wrapping_sub(1))
    }

    /// Writes one packet into `out` (cleared first).
    pub fn write(&mut self, payload_type: u8, timestamp: u32, marker: bool, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80);
        out.push((payload_type & 0x7f) | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_packets_parse_back() {
        let mut w = RtpWriter::new(0x1234_5678, 65535);
        let mut buf = Vec::new();
        w.write(8, 160, true, &[1, 2, 3], &mut buf);
        let p = parse(&buf).unwrap();
        assert_eq!((p.payload_type, p.sequence, p.timestamp, p.marker, p.payload), (8, 65535, 160, true, &[1u8, 2, 3][..]));
        w.write(8, 320, false, &[4], &mut buf);
        assert_eq!(parse(&buf).unwrap().sequence, 0, "sequence wraps");
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut buf = vec![0xb1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // one-word extension
        buf.extend_from_slice(&[42, 43, 0, 2]); // payload then 2 bytes of padding
        assert_eq!(parse(&buf).unwrap().payload, &[42, 43]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(&[0u8; 4]).is_none());
        assert!(parse(&[0x40; 20]).is_none(), "version 1");
        assert!(parse(&[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(), "15 CSRCs announced, none present");
        assert!(parse(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]).is_none(), "padding longer than packet");
    }
}
