//! A call whose B leg (or A leg) is a trunk with `srtp:`: the SDP each side
//! sees, and the refusals, through [`CallMedia`] on real relays.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::config::SrtpMode;
use crate::media::call_media::CallMedia;
use crate::media::sdp::{Crypto, Offered, Sdp};
use crate::media::srtp::Suite;
use crate::media::{Leg, MediaConfig, MediaEngine};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const THEIR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

/// Each test its own 16 ports.
fn engine(first: u16) -> MediaEngine {
    MediaEngine::new(MediaConfig { bind: LOCAL, advertise: LOCAL, port_range: (first, first + 15), timeout: Duration::from_secs(30) }).unwrap()
}

fn sdp(port: u16, proto: &str, cryptos: &[String]) -> Vec<u8> {
    let mut s = format!("v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n");
    for c in cryptos {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s.into_bytes()
}

fn parsed(bytes: &[u8]) -> Sdp {
    Sdp::parse(std::str::from_utf8(bytes).unwrap()).unwrap()
}

fn proto(bytes: &[u8]) -> String {
    parsed(bytes).media(0).unwrap().proto().to_string()
}

fn crypto(bytes: &[u8]) -> Option<Crypto> {
    match parsed(bytes).media(0).unwrap().offered_crypto() {
        Offered::Usable(c) => Some(c),
        Offered::None => None,
        Offered::Unusable(why) => panic!("{why}"),
    }
}

fn theirs(tag: u32, suite: &str) -> String {
    format!("{tag} {suite} inline:{THEIR_KEY}|2^31")
}

#[tokio::test]
async fn a_call_out_offers_savp_with_a_fresh_key_and_takes_the_answer() {
    let engine = engine(38720);
    let mut media = CallMedia::new(engine.clone(), 4);
    media.set_srtp(Leg::B, SrtpMode::Mandatory);
    let offer = media.translate(Leg::A, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
    assert_eq!(proto(&offer), "RTP/SAVP");
    let ours = crypto(&offer).expect("our key");
    assert_eq!((ours.tag, ours.key.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_eq!(String::from_utf8_lossy(&offer).matches("a=crypto").count(), 1);
    // The provider's 183 and then its 200 carry the same answer.
    for _ in 0..2 {
        let answer = media.translate(Leg::B, &sdp(5000, "RTP/SAVP", &[theirs(1, "AES_CM_128_HMAC_SHA1_80")])).await.unwrap();
        assert_eq!(proto(&answer), "RTP/AVP", "the house hears plain RTP");
        assert!(!String::from_utf8_lossy(&answer).contains("crypto"));
    }
    // Another call gets another key.
    let mut other = CallMedia::new(engine, 4);
    other.set_srtp(Leg::B, SrtpMode::Mandatory);
    let second = crypto(&other.translate(Leg::A, &sdp(4002, "RTP/AVP", &[])).await.unwrap()).unwrap();
    assert_ne!(second.key.material, ours.key.material);
}

#[tokio::test]
async fn a_call_in_is_answered_with_its_tag_and_suite_and_our_own_key() {
    let mut media = CallMedia::new(engine(38740), 4);
    media.set_srtp(Leg::A, SrtpMode::Mandatory);
    let offer = sdp(5000, "RTP/SAVP", &["1 AES_256_CM_HMAC_SHA1_80 inline:AAAA".into(), theirs(2, "AES_CM_128_HMAC_SHA1_32")]);
    let to_house = media.translate(Leg::A, &offer).await.unwrap();
    assert_eq!(proto(&to_house), "RTP/AVP");
    assert!(!String::from_utf8_lossy(&to_house).contains("crypto"));
    let mut first = None;
    for _ in 0..2 {
        let answer = media.translate_final_answer(Leg::B, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
        assert_eq!(proto(&answer), "RTP/SAVP");
        let c = crypto(&answer).expect("our key");
        assert_eq!((c.tag, c.key.suite), (2, Suite::AesCm128HmacSha1_32));
        assert_ne!(c.format(), theirs(2, "AES_CM_128_HMAC_SHA1_32"), "our key, not theirs");
        assert_eq!(*first.get_or_insert(c.clone()), c, "a 183 and its 200 say the same");
    }
}

#[tokio::test]
async fn optional_offers_avp_with_a_key_and_takes_a_plain_answer() {
    let mut media = CallMedia::new(engine(38760), 4);
    media.set_srtp(Leg::B, SrtpMode::Optional);
    let offer = media.translate(Leg::A, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
    assert_eq!(proto(&offer), "RTP/AVP");
    assert!(crypto(&offer).is_some());
    let answer = media.translate(Leg::B, &sdp(5000, "RTP/AVP", &[])).await.unwrap();
    assert_eq!(proto(&answer), "RTP/AVP");
    // and a plain offer in is answered plain
    let mut media = CallMedia::new(engine(38780), 4);
    media.set_srtp(Leg::A, SrtpMode::Optional);
    media.translate(Leg::A, &sdp(5000, "RTP/AVP", &[])).await.unwrap();
    let answer = media.translate(Leg::B, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
    assert!(crypto(&answer).is_none() && proto(&answer) == "RTP/AVP");
}

#[tokio::test]
async fn unusable_sdp_is_refused_naming_why_and_frees_its_ports() {
    let engine = engine(38800);
    let cases: [(SrtpMode, Vec<u8>, &str); 6] = [
        (SrtpMode::Mandatory, sdp(5000, "RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:%%not-base64%%".into()]), "a=crypto: key-params: the key is not base64"),
        (SrtpMode::Mandatory, sdp(5000, "RTP/SAVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQF".into()]), "6 bytes, not 30"),
        (SrtpMode::Mandatory, sdp(5000, "RTP/SAVP", &["1 F8_128_HMAC_SHA1_80 inline:AAECAwQF".into()]), "crypto-suite \"F8_128_HMAC_SHA1_80\": not supported"),
        (SrtpMode::Mandatory, sdp(5000, "RTP/SAVP", &[format!("1 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}|2^31|1:4")]), "MKI"),
        (SrtpMode::Mandatory, sdp(5000, "RTP/AVP", &[]), "plain RTP, but this trunk has srtp: mandatory"),
        (SrtpMode::Optional, sdp(5000, "RTP/SAVP", &[]), "RTP/SAVP without a=crypto"),
    ];
    for (mode, offer, why) in cases {
        let mut media = CallMedia::new(engine.clone(), 4);
        media.set_srtp(Leg::A, mode);
        let e = format!("{:#}", media.translate(Leg::A, &offer).await.expect_err(why));
        assert!(e.contains(why), "{e}\n  want: {why}");
        drop(media);
        assert_no_relay_left(&engine).await;
    }
    // A wrong tag in the provider's answer.
    let mut media = CallMedia::new(engine.clone(), 4);
    media.set_srtp(Leg::B, SrtpMode::Mandatory);
    media.translate(Leg::A, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
    let e = format!("{:#}", media.translate(Leg::B, &sdp(5000, "RTP/SAVP", &[theirs(7, "AES_CM_128_HMAC_SHA1_80")])).await.unwrap_err());
    assert!(e.contains("answer has tag 7"), "{e}");
    drop(media);
    assert_no_relay_left(&engine).await;
}

/// A relay's task ends (and gives its ports back) soon after its call drops it.
async fn assert_no_relay_left(engine: &MediaEngine) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while engine.active_relays() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(engine.active_relays(), 0, "a refused call's relay is gone");
}

#[tokio::test]
async fn a_trunk_leg_made_after_the_first_offer_is_offered_as_its_trunk_takes_media() {
    let engine = engine(38820);
    let mut media = CallMedia::new(engine.clone(), 4);
    // The first offer went to a house phone (or a plain trunk): no key.
    let first = media.translate(Leg::A, &sdp(4000, "RTP/AVP", &[])).await.unwrap();
    assert_eq!((proto(&first).as_str(), crypto(&first)), ("RTP/AVP", None));
    // A forward to a mandatory trunk: RTP/SAVP with a key of ours, on the same relay.
    let secure = media.offer_to_trunk(Leg::A, SrtpMode::Mandatory).await.unwrap();
    assert_eq!(proto(&secure), "RTP/SAVP");
    let key = crypto(&secure).expect("our key");
    assert_eq!(parsed(&secure).media_port(0), parsed(&first).media_port(0), "the same relay port");
    // Its provider answers with its key: the answer is taken.
    let answer = media.translate(Leg::B, &sdp(5000, "RTP/SAVP", &[theirs(1, "AES_CM_128_HMAC_SHA1_80")])).await.unwrap();
    assert_eq!((proto(&answer).as_str(), crypto(&answer)), ("RTP/AVP", None), "the caller sees plain RTP");
    // The next trunk is SRTP as well: a fresh key, never the one another provider got.
    let again = media.offer_to_trunk(Leg::A, SrtpMode::Mandatory).await.unwrap();
    let fresh = crypto(&again).expect("our key");
    assert_ne!(fresh.key, key.key, "a new provider gets a new key");
    // A plain trunk after it: plain RTP, no key.
    let plain = media.offer_to_trunk(Leg::A, SrtpMode::Off).await.unwrap();
    assert_eq!((proto(&plain).as_str(), crypto(&plain)), ("RTP/AVP", None));
    assert!(!String::from_utf8_lossy(&plain).contains("a=crypto"));
    // `optional`: RTP/AVP with a key.
    let optional = media.offer_to_trunk(Leg::A, SrtpMode::Optional).await.unwrap();
    assert_eq!(proto(&optional), "RTP/AVP");
    assert!(crypto(&optional).is_some());
}
