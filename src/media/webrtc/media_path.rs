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
                let timestamp = (numer * G711_CLOCK as u64 / clock.max(1) as u64) as u32;
                out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false });
            }
            MediaPath::Opus { browser_pt, .. } if pt == *browser_pt => {
                let timestamp = (numer * OPUS_CLOCK as u64 / clock.max(1) as u64) as u32;
                out.push(Frame { timestamp, payload: payload.to_vec(), concealed: false });
            }
            MediaPath::Transcode { opus_pt, to_device, .. } if pt == *opus_pt => {
                let numer_48k = numer * OPUS_CLOCK as u64 / clock.max(1) as u64;
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
