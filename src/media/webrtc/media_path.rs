//! How audio crosses one bridge once negotiated: G.711 passed through when
//! the browser and the device share a law (the common path), Opus passed
//! through (payload type rewritten) for a device that has only Opus, else
//! Opus on the browser side transcoded to the device's law.
use super::codec::{DeviceCodec, G711};
use super::transcode::{Frame, G711ToOpus, OpusToG711};

const G711_CLOCK: u32 = 8000;
const OPUS_CLOCK: u32 = 48_000;

pub(super) enum MediaPath {
    Passthrough(G711),
    /// Both sides speak Opus, each under its own payload type; one clock.
    Opus { device_pt: u8, browser_pt: u8 },
    Transcode { law: G711, opus_pt: u8, to_device: OpusToG711, to_browser: G711ToOpus },
}

impl MediaPath {
    pub(super) fn transcode(law: G711, opus_pt: u8) -> Result<Self, String> {
        Ok(MediaPath::Transcode { law, opus_pt, to_device: OpusToG711::new(law)?, to_browser: G711ToOpus::new(law)? })
    }

    /// What the device sends and receives.
    pub(super) fn device_codec(&self) -> DeviceCodec {
        match self {
            MediaPath::Passthrough(law) | MediaPath::Transcode { law, .. } => DeviceCodec::G711(*law),
            MediaPath::Opus { device_pt, .. } => DeviceCodec::Opus(*device_pt),
        }
    }

    /// The payload type and RTP clock of what the browser is sent.
    pub(super) fn browser_format(&self) -> (u8, u32) {
        match self {
            MediaPath::Passthrough(law) => (law.payload_type(), G711_CLOCK),
            MediaPath::Opus { browser_pt: opus_pt, .. } | MediaPath::Transcode { opus_pt, .. } => (*opus_pt, OPUS_CLOCK),
        }
    }

    /// A browser packet (`pt`, RTP time `numer` at `clock` Hz) to frames for
    /// the device on its codec's clock.
    pub(super) fn browser_to_device(&mut self, pt: u8, numer: u64, clock: u32, payload: &[u8], out: &mut Vec<Frame>) {
        match self {
            MediaPath::Passthrough(law) if pt == law.payload_type() => {
                let timestamp = rescale(numer, G711_CLOCK, clock) as u32;
                out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false });
            }
            MediaPath::Opus { browser_pt, .. } if pt == *browser_pt => {
                let timestamp = rescale(numer, OPUS_CLOCK, clock) as u32;
                out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false });
            }
            MediaPath::Transcode { opus_pt, to_device, .. } if pt == *opus_pt => {
                let numer_48k = rescale(numer, OPUS_CLOCK, clock);
                to_device.push(numer_48k, payload, out);
            }
            _ => {}
        }
    }

    /// A device packet in its codec to frames for the browser, timed on
    /// [`Self::browser_format`]'s clock. Other payload types are ignored.
    pub(super) fn device_to_browser(&mut self, pt: u8, timestamp: u32, payload: &[u8], out: &mut Vec<Frame>) {
        if pt != self.device_codec().payload_type() {
            return;
        }
        match self {
            MediaPath::Passthrough(_) | MediaPath::Opus { .. } => out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false }),
            MediaPath::Transcode { to_browser, .. } => to_browser.push(timestamp, payload, out),
        }
    }
}

/// RTP time `numer` at `from` Hz, on a `to` Hz clock. In 128 bits: the
/// product overflowed 64 for a large `numer` (found by fuzz/ `bridge_rtp`).
fn rescale(numer: u64, to: u32, from: u32) -> u64 {
    (u128::from(numer) * u128::from(to) / u128::from(from.max(1))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_browser_time_is_rescaled_without_overflow() {
        let numer = u64::MAX / 4000;
        let want = (u128::from(numer) * 8000 / 48_000) as u64 as u32;
        let mut out = Vec::new();
        MediaPath::Passthrough(G711::Pcmu).browser_to_device(0, numer, 48_000, b"x", &mut out);
        assert_eq!(out[0].timestamp, want);
        out.clear();
        let mut opus = MediaPath::Opus { device_pt: 96, browser_pt: 111 };
        opus.browser_to_device(111, numer, 8000, b"x", &mut out);
        assert_eq!(out[0].timestamp, (u128::from(numer) * 48_000 / 8000) as u64 as u32);
        assert_eq!(rescale(u64::MAX, 48_000, 48_000), u64::MAX);
    }
}
