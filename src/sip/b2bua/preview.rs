//! Door preview: a ringing panel phone (a browser on the call's own WebRTC
//! bridge) answers our offer early, in a 183 with SDP, and receives the
//! caller's audio and video before anyone answers. The caller gets our
//! bridge's SDP in a 183 and nothing of the browser until it answers: the
//! bridge holds the browser's media back (`media/webrtc/core.rs`), whatever
//! the page sends. Which calls may be previewed is decided here, sans-IO,
//! when the call starts; the fork to the browser then carries [`HEADER`],
//! and only a page that got it previews (the SIP Core card never does).
//! The callee's SIP devices may ring beside it: the caller then gets the
//! bridge's SDP in the 183, and the relay's in the 200 if a SIP device
//! answers (the bridge, and the preview with it, goes).
use rsipstack::sip::Header;

/// On the INVITE to a panel phone: this call may be previewed.
pub const HEADER: &str = "X-HA-PBX-Preview";

/// What a new call is, for the preview decision.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ringing {
    /// How many of the devices that ring are browsers. One bridge takes one
    /// browser's answer, so a preview goes to a callee with one; SIP devices
    /// may ring beside it.
    pub browsers: usize,
    /// The caller is a browser too (two bridges chained): no preview.
    pub caller_browser: bool,
    /// A ring group (its members come and go by its strategy): no preview.
    pub group: bool,
}

/// Whether the call may be previewed, or why not (for the log).
pub(super) fn decide(r: Ringing) -> Result<(), &'static str> {
    if r.browsers == 0 {
        return Err("the callee rings no browser");
    }
    if r.caller_browser {
        return Err("a browser calls");
    }
    if r.group {
        return Err("a ring group rings");
    }
    if r.browsers != 1 {
        return Err("more than one browser rings");
    }
    Ok(())
}

/// The header a previewable call's fork carries.
pub(super) fn header() -> Header {
    Header::Other(HEADER.into(), "receive-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_PANEL: Ringing = Ringing { browsers: 1, caller_browser: false, group: false };

    #[test]
    fn a_device_calling_one_panel_phone_may_be_previewed() {
        assert_eq!(decide(ONE_PANEL), Ok(()));
    }

    #[test]
    fn anything_else_is_not_previewed() {
        assert!(decide(Ringing { caller_browser: true, ..ONE_PANEL }).is_err(), "browser to browser");
        assert!(decide(Ringing { group: true, ..ONE_PANEL }).is_err(), "a ring group");
        assert!(decide(Ringing { browsers: 2, ..ONE_PANEL }).is_err(), "two tabs would share one bridge");
        assert!(decide(Ringing { browsers: 0, ..ONE_PANEL }).is_err(), "SIP devices only");
    }
}
