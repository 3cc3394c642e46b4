//! Telephone-event payload type per direction (sans-IO).
//!
//! Each side's SDP names the payload type it wants RFC 4733 events in. A
//! device that follows RFC 3264 sends with the other side's number; many
//! providers send with their own instead (96 to a phone that offered 101),
//! and the phone then drops the key press as an unknown payload. The
//! signalling side computes, from both SDPs, which number a leg's events
//! may come in that the other side would not understand ([`EventPtMap`]);
//! the relay rewrites it in the RTP header of what it forwards.

/// Events from one leg that carry `from` leave with `to`. Only dynamic
/// payload types (96-127): telephone-event is never a static one, and a
/// static number is a codec the rewrite must not touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPtMap {
    from: u8,
    to: u8,
}

const DYNAMIC: std::ops::RangeInclusive<u8> = 96..=127;

impl EventPtMap {
    /// None when there is nothing to rewrite (the same number) or either
    /// number is not dynamic.
    pub fn new(from: u8, to: u8) -> Option<EventPtMap> {
        (from != to && DYNAMIC.contains(&from) && DYNAMIC.contains(&to)).then_some(EventPtMap { from, to })
    }

    /// The plan for events one leg (`sender`) sends toward the other
    /// (`receiver`), from the telephone-event types both SDPs of the stream
    /// name and the payload types the receiver's m= line lists. Returns the
    /// type the relay detects key presses by (after any rewrite) and the
    /// rewrite. A sender's own number that the receiver uses for a codec is
    /// left alone (it is that codec, sent as RFC 3264 says).
    pub fn plan(sender_event: Option<u8>, receiver_event: Option<u8>, receiver_pts: &[u8]) -> (Option<u8>, Option<EventPtMap>) {
        match (sender_event, receiver_event) {
            (Some(own), Some(theirs)) if own != theirs && !receiver_pts.contains(&own) => {
                let map = EventPtMap::new(own, theirs);
                (Some(theirs), map)
            }
            (_, Some(theirs)) => (Some(theirs), None),
            (own, None) => (own, None),
        }
    }

    /// Rewrites the payload type of one RTP packet if it is `from`; keeps
    /// the marker bit. True when it did. RTCP (muxed, 200-204) and anything
    /// not RTP version 2 pass untouched.
    pub fn apply(&self, packet: &mut [u8]) -> bool {
        if packet.len() < 12 || packet[0] >> 6 != 2 || packet[1] & 0x7f != self.from {
            return false;
        }
        packet[1] = (packet[1] & 0x80) | self.to;
        true
    }
}
