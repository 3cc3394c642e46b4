//! How audio crosses one bridge once negotiated: G.711 passed through when
//! the browser and the device share a law (the common path), else Opus on
//! the browser side transcoded to the device's law.
use super::codec::G711;
use super::transcode::{Frame, G711ToOpus, OpusToG711};

const G711_CLOCK: u32 = 8000;
const OPUS_CLOCK: u32 = 48_000;

pub(super) enum MediaPath {
    Passthrough(G711),
    Transcode { law: G711, opus_pt: u8, to_device: OpusToG711, to_browser: G711ToOpus },
}

impl MediaPath {
    pub(super) fn transcode(law: G711, opus_pt: u8) -> Result<Self, String> {
        Ok(MediaPath::Transcode { law, opus_pt, to_device: OpusToG711::new(law)?, to_browser: G711ToOpus::new(law)? })
    }

    /// The law the device sends and receives.
    pub(super) fn device_law(&self) -> G711 {
        match self {
            MediaPath::Passthrough(law) | MediaPath::Transcode { law, .. } => *law,
        }
    }

    /// The payload type and RTP clock of what the browser is sent.
    pub(super) fn browser_format(&self) -> (u8, u32) {
        match self {
            MediaPath::Passthrough(law) => (law.payload_type(), G711_CLOCK),
            MediaPath::Transcode { opus_pt, .. } => (*opus_pt, OPUS_CLOCK),
        }
    }

    /// A browser packet (`pt`, RTP time `numer` at `clock` Hz) to G.711
    /// frames for the device on the 8 kHz clock.
    pub(super) fn browser_to_device(&mut self, pt: u8, numer: u64, clock: u32, payload: &[u8], out: &mut Vec<Frame>) {
        match self {
            MediaPath::Passthrough(law) if pt == law.payload_type() => {
                let timestamp = (numer * G711_CLOCK as u64 / clock.max(1) as u64) as u32;
                out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false });
            }
            MediaPath::Transcode { opus_pt, to_device, .. } if pt == *opus_pt => {
                let numer_48k = numer * OPUS_CLOCK as u64 / clock.max(1) as u64;
                to_device.push(numer_48k, payload, out);
            }
            _ => {}
        }
    }

    /// A device packet in its law to frames for the browser, timed on
    /// [`Self::browser_format`]'s clock. Other payload types are ignored.
    pub(super) fn device_to_browser(&mut self, pt: u8, timestamp: u32, payload: &[u8], out: &mut Vec<Frame>) {
        if pt != self.device_law().payload_type() {
            return;
        }
        match self {
            MediaPath::Passthrough(_) => out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false }),
            MediaPath::Transcode { to_browser, .. } => to_browser.push(timestamp, payload, out),
        }
    }
}
