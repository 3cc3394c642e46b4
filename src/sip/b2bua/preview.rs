//! Door preview: a ringing panel phone (a browser on the call's own WebRTC
//! bridge) answers our offer early, in a 183 with SDP, and receives the
//! caller's audio and video before anyone answers. The caller gets our
//! bridge's SDP in a 183 and nothing of the browser until it answers: the
//! bridge holds the browser's media back (`media/webrtc/core.rs`), whatever
//! the page sends. Which calls may be previewed is decided here, sans-IO,
//! when the call starts; the fork to the browser then carries [`HEADER`],
//! and only a page that got it previews (the SIP Core card never does).
use rsipstack::sip::Header;

/// On the INVITE to a panel phone: this call may be previewed.
pub const HEADER: &str = "X-HA-PBX-Preview";

/// What a new call is, for the preview decision.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ringing {
    /// Every device the callee rings is a browser (one WebRTC offer, one bridge).
    pub browsers_only: bool,
    /// The caller is a browser too (two bridges chained): no preview.
    pub caller_browser: bool,
    /// How many devices ring. One bridge takes one browser's answer, so a
    /// preview goes to a callee with one.
    pub devices: usize,
    /// A ring group (its members come and go by its strategy): no preview.
    pub group: bool,
}

/// Whether the call may be previewed, or why not (for the log).
pub(super) fn decide(r: Ringing) -> Result<(), &'static str> {
    if !r.browsers_only {
        return Err("the callee rings SIP devices");
    }
    if r.caller_browser {
        return Err("a browser calls");
    }
    if r.group {
        return Err("a ring group rings");
    }
    if r.devices != 1 {
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

    const ONE_PANEL: Ringing = Ringing { browsers_only: true, caller_browser: false, devices: 1, group: false };

    #[test]
    fn a_device_calling_one_panel_phone_may_be_previewed() {
        assert_eq!(decide(ONE_PANEL), Ok(()));
    }

    #[test]
    fn anything_else_is_not_previewed() {
        assert!(decide(Ringing { browsers_only: false, ..ONE_PANEL }).is_err(), "a desk phone rings too");
        assert!(decide(Ringing { caller_browser: true, ..ONE_PANEL }).is_err(), "browser to browser");
        assert!(decide(Ringing { group: true, ..ONE_PANEL }).is_err(), "a ring group");
        assert!(decide(Ringing { devices: 2, ..ONE_PANEL }).is_err(), "two tabs would share one bridge");
        assert!(decide(Ringing { devices: 0, ..ONE_PANEL }).is_err());
    }
}
