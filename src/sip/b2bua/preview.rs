//! Door preview: a ringing panel phone (a browser on a WebRTC bridge)
//! answers our offer early, in a 183 with SDP, and receives the caller's
//! audio and video before anyone answers. The caller hears nothing of any
//! browser until one answers: the bridges hold the browsers' media back
//! (`media/webrtc/core.rs`), whatever the pages send. Which calls may be
//! previewed, and how, is decided here, sans-IO, when the call starts; the
//! forks to browsers then carry [`HEADER`], and only a page that got it
//! previews (the SIP Core card never does).
//!
//! - [`Mode::Single`]: one browser rings, and nothing else. Its own bridge
//!   takes the call: the caller gets the bridge's SDP in the 183. Audio
//!   and video.
//! - [`Mode::FanOut`]: several browsers may ring (two panel tabs, a ring
//!   group), or one beside SIP devices of the callee. Those may send early
//!   media of their own (a 183 with SDP) before the browser's preview
//!   answer: the caller can take one early answer only, and the fan-out's
//!   is the one that keeps the preview whatever comes first (a desk
//!   phone's early media is not relayed; `early_media.rs`). The caller's media is anchored on our fan-out
//!   (`media/call_media/previews.rs`) and copied to each previewing
//!   browser's own bridge, at most [`MAX_PREVIEWS`] per call; the one that
//!   answers takes the caller (the 200 names its bridge). Video too: a
//!   camera doorbell's VP8 or H.264 is taken `recvonly` in the 183 and
//!   copied to every previewing bridge, whose keyframe requests reach the
//!   door as one (a panel that joins late gets a picture soon). A SIP
//!   device that answers gets the door's video through the relay, as in a
//!   call without preview; a format the bridges cannot carry (H.265) is
//!   refused in the 183 and the preview is audio only.
use rsipstack::sip::Header;

pub use crate::media::call_media::MAX_PREVIEWS;

/// On the INVITE to a panel phone: this call may be previewed.
pub const HEADER: &str = "X-HA-PBX-Preview";

/// What a new call is, for the preview decision.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ringing {
    /// How many of the devices that may ring are browsers.
    pub browsers: usize,
    /// The caller is a browser too (two bridges chained): no preview.
    pub caller_browser: bool,
    /// A ring group (its members come and go by its strategy).
    pub group: bool,
    /// How many SIP devices (not browsers) may ring beside them.
    pub devices: usize,
}

/// How a previewed call's browsers get the caller's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// One browser rings, on the call's own bridge.
    Single,
    /// Several may ring: each on its own bridge behind our fan-out.
    FanOut,
}

/// Whether the call may be previewed and how, or why not (for the log).
pub(super) fn decide(r: Ringing) -> Result<Mode, &'static str> {
    if r.browsers == 0 {
        return Err("the callee rings no browser");
    }
    if r.caller_browser {
        return Err("a browser calls");
    }
    if r.browsers == 1 && !r.group && r.devices == 0 {
        return Ok(Mode::Single);
    }
    Ok(Mode::FanOut)
}

/// The header a previewable call's fork carries.
pub(super) fn header() -> Header {
    Header::Other(HEADER.into(), "receive-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PANEL: Ringing = Ringing { browsers: 1, caller_browser: false, group: false, devices: 0 };

    #[test]
    fn a_device_calling_one_panel_phone_is_previewed_on_its_own_bridge() {
        assert_eq!(decide(ONE_PANEL), Ok(Mode::Single));
    }

    #[test]
    fn several_panel_phones_and_ring_groups_are_previewed_through_the_fan_out() {
        assert_eq!(decide(Ringing { browsers: 2, ..ONE_PANEL }), Ok(Mode::FanOut), "two tabs of one extension");
        assert_eq!(decide(Ringing { group: true, ..ONE_PANEL }), Ok(Mode::FanOut), "a group with one panel member");
        assert_eq!(decide(Ringing { group: true, browsers: 5, ..ONE_PANEL }), Ok(Mode::FanOut), "the everyone group");
        // A desk phone of the callee may send its early media first: the fan-out's 183 keeps the preview.
        assert_eq!(decide(Ringing { devices: 1, ..ONE_PANEL }), Ok(Mode::FanOut), "one panel beside a desk phone");
        assert_eq!(decide(Ringing { devices: 2, group: true, browsers: 2, ..ONE_PANEL }), Ok(Mode::FanOut));
        // More browsers than MAX_PREVIEWS: still previewed, the ones past the cap are refused one by one.
        assert_eq!(decide(Ringing { browsers: MAX_PREVIEWS + 3, ..ONE_PANEL }), Ok(Mode::FanOut));
    }

    #[test]
    fn what_is_still_not_previewed() {
        assert!(decide(Ringing { caller_browser: true, ..ONE_PANEL }).is_err(), "browser to browser");
        assert!(decide(Ringing { caller_browser: true, group: true, browsers: 3, ..ONE_PANEL }).is_err(), "a browser calling a group");
        assert!(decide(Ringing { browsers: 0, ..ONE_PANEL }).is_err(), "SIP devices only");
        assert!(decide(Ringing { browsers: 0, group: true, ..ONE_PANEL }).is_err(), "a group of SIP devices");
        assert!(decide(Ringing { browsers: 0, devices: 3, ..ONE_PANEL }).is_err(), "desk phones only");
        assert!(decide(Ringing { caller_browser: true, devices: 1, ..ONE_PANEL }).is_err(), "a browser calling a panel and a desk phone");
    }
}
