//! Which telephone-event payload type each direction of one stream's relay
//! carries, from the SDP each side sent (see `relay::event_pt`).
use crate::media::relay::event_pt::EventPtMap;
use crate::media::sdp::Media;
use crate::media::{Leg, Relay};

/// `from` just sent `sent` for this stream; `peer` is what the other side
/// sent last for it (None while `sent` is a first offer). Each side's
/// events are detected, and leave, with the number the receiving side named.
pub(super) fn set_event_types(relay: &Relay, from: Leg, sent: Media<'_>, peer: Option<Media<'_>>) {
    let own = sent.telephone_event_pt();
    let Some(peer) = peer else {
        // Only an offer so far: both directions use the number it chose.
        if let Some(pt) = own {
            relay.set_dtmf_payload_type(Leg::A, Some(pt));
            relay.set_dtmf_payload_type(Leg::B, Some(pt));
        }
        return;
    };
    let theirs = peer.telephone_event_pt();
    for (sender, own, theirs, receiver) in [(from, own, theirs, peer), (from.other(), theirs, own, sent)] {
        let (detect, map) = EventPtMap::plan(own, theirs, &receiver.payload_types());
        if let Some(map) = map {
            tracing::debug!(?sender, ?map, "telephone-event payload type rewritten toward the other side");
        }
        relay.set_dtmf_payload_type(sender, detect);
        relay.set_event_pt_map(sender, map);
    }
}
