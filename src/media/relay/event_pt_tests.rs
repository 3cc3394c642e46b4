use super::event_pt::EventPtMap;

fn event(pt: u8, marker: bool) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4];
    p.extend_from_slice(&[5, 0x8a, 0x01, 0x40]);
    p
}

#[test]
fn a_provider_sending_its_own_number_is_rewritten_to_the_phones() {
    // the phone offered 101, the provider answered 96 (and sends 96)
    let (detect, map) = EventPtMap::plan(Some(96), Some(101), &[0, 8, 101]);
    assert_eq!(detect, Some(101), "detected after the rewrite");
    let map = map.expect("a rewrite");
    let mut p = event(96, true);
    assert!(map.apply(&mut p));
    assert_eq!(p[1], 0x80 | 101, "marker kept, payload type the phone's");
    assert_eq!(&p[2..], &event(96, true)[2..], "nothing else touched");
    // the other direction: the phone follows RFC 3264 and sends the provider's 96
    let (detect, map) = EventPtMap::plan(Some(101), Some(96), &[0, 96]);
    assert_eq!(detect, Some(96));
    let mut p = event(96, false);
    assert!(!map.expect("its own 101 would be rewritten").apply(&mut p), "96 is already right");
    assert_eq!(p, event(96, false));
}

#[test]
fn audio_and_rtcp_are_never_rewritten() {
    let map = EventPtMap::new(96, 101).unwrap();
    let mut audio = event(0, false);
    assert!(!map.apply(&mut audio));
    assert_eq!(audio, event(0, false));
    // muxed RTCP (a receiver report: 201) and a short or non-v2 packet
    let mut rtcp = vec![0x81, 201, 0, 1, 0, 0, 0, 0];
    assert!(!map.apply(&mut rtcp));
    let mut v1 = event(96, false);
    v1[0] = 0x40;
    assert!(!map.apply(&mut v1));
    assert!(!map.apply(&mut [0x80, 96]));
}

#[test]
fn same_number_static_numbers_and_a_codec_of_the_receiver_mean_no_rewrite() {
    assert_eq!(EventPtMap::plan(Some(101), Some(101), &[0, 101]), (Some(101), None));
    // the sender's event number is the receiver's Opus: it is Opus
    assert_eq!(EventPtMap::plan(Some(96), Some(101), &[96, 0, 101]), (Some(101), None));
    // telephone-event on a static number (hostile or broken SDP): nothing rewritten
    assert_eq!(EventPtMap::new(0, 101), None);
    assert_eq!(EventPtMap::new(101, 8), None);
    assert_eq!(EventPtMap::new(128, 101), None);
    assert_eq!(EventPtMap::plan(Some(8), Some(101), &[0, 101]), (Some(101), None));
}

#[test]
fn one_side_without_telephone_event() {
    // the receiver negotiated none: what the sender might send is still detected
    assert_eq!(EventPtMap::plan(Some(96), None, &[0]), (Some(96), None));
    assert_eq!(EventPtMap::plan(None, Some(101), &[0, 101]), (Some(101), None));
    assert_eq!(EventPtMap::plan(None, None, &[0]), (None, None));
}
