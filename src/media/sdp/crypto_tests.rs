use super::*;

/// 30 bytes 0x00..0x1d.
const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

fn material() -> [u8; MATERIAL_LEN] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn a_usable_line_gives_tag_suite_and_key() {
    let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}")).unwrap();
    assert_eq!(c, Crypto { tag: 1, key: SrtpKey { suite: Suite::AesCm128HmacSha1_80, material: material() } });
    let c = Crypto::parse(&format!("7  AES_CM_128_HMAC_SHA1_32   inline:{KEY_B64}|2^31")).unwrap();
    assert_eq!((c.tag, c.key.suite), (7, Suite::AesCm128HmacSha1_32));
    assert!(Crypto::parse(&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2147483648")).is_ok(), "a decimal lifetime");
    assert!(Crypto::parse(&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{}", KEY_B64.trim_end_matches('='))).is_ok());
}

#[test]
fn what_we_write_reads_back() {
    let c = Crypto { tag: 3, key: SrtpKey::random(Suite::AesCm128HmacSha1_80) };
    let text = c.format();
    assert!(text.starts_with("3 AES_CM_128_HMAC_SHA1_80 inline:"), "{text}");
    assert_eq!(text.len(), "3 AES_CM_128_HMAC_SHA1_80 inline:".len() + 40, "30 bytes are 40 base64 characters");
    assert_eq!(Crypto::parse(&text).unwrap(), c);
}

#[test]
fn unusable_lines_say_which_field() {
    let cases = [
        ("", "no tag"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "tag"),
        ("0 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "tag"),
        ("1", "no crypto-suite"),
        ("1 AES_256_CM_HMAC_SHA1_80 inline:AAAA", "crypto-suite \"AES_256_CM_HMAC_SHA1_80\": not supported"),
        ("1 F8_128_HMAC_SHA1_80 inline:AAAA", "crypto-suite"),
        ("1 AES_CM_128_HMAC_SHA1_80", "no key-params"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:http://x", "not `inline:`"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!", "not base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", "are 24 bytes, not 30"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj", "are 36 bytes"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20"), "lifetime \"2^20\" is shorter"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^31|1:4"), "MKI"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:4"), "MKI"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^31|2^31"), "more than one lifetime"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|lots"), "not a number"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64};inline:{KEY_B64}"), "more than one key"),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP"), "session parameter \"UNENCRYPTED_SRTP\""),
        (&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} KDR=1"), "session parameter"),
    ];
    for (line, why) in cases {
        let e = Crypto::parse(line).expect_err(line);
        assert!(e.contains(why), "{line}: {e}");
        assert!(!e.contains(KEY_B64), "a key is never quoted: {e}");
    }
    let long = format!("1 {} inline:AAAA", "X".repeat(5000));
    assert!(Crypto::parse(&long).unwrap_err().len() < 120, "bounded");
}

fn sdp(proto: &str, cryptos: &[&str]) -> Sdp {
    let mut text = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    for c in cryptos {
        text.push_str(&format!("a=crypto:{c}\r\n"));
    }
    Sdp::parse(&text).unwrap()
}

#[test]
fn a_stream_offers_its_first_usable_line() {
    let s = sdp("RTP/SAVP", &[]);
    assert_eq!(s.media(0).unwrap().offered_crypto(), Offered::None);
    assert!(s.media(0).unwrap().is_savp());
    let good = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}");
    let s = sdp("RTP/SAVP", &["1 AEAD_AES_256_GCM inline:AAAA", &good]);
    match s.media(0).unwrap().offered_crypto() {
        Offered::Usable(c) => assert_eq!((c.tag, c.key.suite), (2, Suite::AesCm128HmacSha1_32)),
        other => panic!("{other:?}"),
    }
    let s = sdp("RTP/AVP", &["1 AES_CM_128_HMAC_SHA1_80 inline:%%%", "2 NULL_HMAC_SHA1_80 inline:AAAA"]);
    assert!(!s.media(0).unwrap().is_savp());
    match s.media(0).unwrap().offered_crypto() {
        Offered::Unusable(why) => assert!(why.contains("base64"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_crypto_replaces_the_lines_and_the_profile() {
    let mut s = sdp("RTP/AVP", &["9 AES_CM_128_HMAC_SHA1_80 inline:AAAA"]);
    let ours = Crypto { tag: 1, key: SrtpKey { suite: Suite::AesCm128HmacSha1_80, material: material() } };
    s.set_crypto(0, "RTP/SAVP", std::slice::from_ref(&ours));
    let text = s.to_string();
    assert!(text.contains("m=audio 4000 RTP/SAVP 0 101\r\n"), "{text}");
    assert!(text.contains(&format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}\r\n")), "{text}");
    assert_eq!(text.matches("a=crypto").count(), 1, "{text}");
    s.set_crypto(0, "RTP/AVP", &[]);
    let text = s.to_string();
    assert!(text.contains("m=audio 4000 RTP/AVP 0 101\r\n") && !text.contains("crypto"), "{text}");
}
