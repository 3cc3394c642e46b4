use super::*;

/// RFC 3711 Appendix B.3's master key and salt (libsrtp's reference packet
/// below is protected with them).
const B3_MATERIAL: [u8; MATERIAL_LEN] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39, // key
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6, // salt
];

/// SSRC 0xcafebabe, sequence 0x1234, 16 bytes of 0xab.
const REF_PLAIN: [u8; 28] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, //
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];

/// libsrtp's `srtp_driver` reference: REF_PLAIN under AES_CM_128_HMAC_SHA1_80.
const REF_PROTECTED: [u8; 38] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, //
    0x4e, 0x55, 0xdc, 0x4c, 0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, //
    0xb7, 0x8d, 0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb, // tag
];

fn key(suite: Suite, material: [u8; MATERIAL_LEN]) -> SrtpKey {
    SrtpKey { suite, material }
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A sender report with no report blocks.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0x00, 0x06];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 20]);
    p
}

/// A context of the crate's own, outside [`SrtpLeg`]: what the far end runs.
fn far_end(k: &SrtpKey) -> webrtc_srtp::context::Context {
    k.context()
}

#[test]
fn known_answer_aes_cm_128_hmac_sha1_80() {
    let k = key(Suite::AesCm128HmacSha1_80, B3_MATERIAL);
    let mut ours = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: k });
    assert_eq!(ours.protect_rtp(&REF_PLAIN).unwrap(), REF_PROTECTED.to_vec());
    assert_eq!(ours.unprotect_rtp(&REF_PROTECTED).unwrap(), REF_PLAIN.to_vec());
}

#[test]
fn known_answer_sha1_32_is_the_80_tag_cut_short() {
    // The same keystream; the tag is the first 32 bits of the same HMAC.
    let k = key(Suite::AesCm128HmacSha1_32, B3_MATERIAL);
    let mut ours = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: k });
    let protected = ours.protect_rtp(&REF_PLAIN).unwrap();
    assert_eq!(protected, REF_PROTECTED[..32].to_vec());
    assert_eq!(ours.unprotect_rtp(&protected).unwrap(), REF_PLAIN.to_vec());
}

#[test]
fn what_we_protect_the_far_end_unprotects_and_back() {
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
        let keys = SrtpKeys { send: SrtpKey::random(suite), receive: SrtpKey::random(suite) };
        assert_ne!(keys.send.material, keys.receive.material, "fresh keys");
        let mut ours = SrtpLeg::new(keys.clone());
        let mut far_rx = far_end(&keys.send);
        let mut far_tx = far_end(&keys.receive);
        for seq in 0..50u16 {
            let plain = rtp(seq, 0x1111, &[0xd5; 160]);
            let protected = ours.protect_rtp(&plain).unwrap();
            assert_ne!(&protected[12..172], &plain[12..], "payload encrypted");
            assert_eq!(far_rx.decrypt_rtp(&protected).unwrap().to_vec(), plain);
            let theirs = rtp(seq, 0x2222, &[0x55; 160]);
            let sent = far_tx.encrypt_rtp(&theirs).unwrap();
            assert_eq!(ours.unprotect_rtp(&sent).unwrap(), theirs);
        }
        let report = rtcp(0x1111);
        let protected = ours.protect_rtcp(&report).unwrap();
        assert_eq!(far_rx.decrypt_rtcp(&protected).unwrap().to_vec(), report);
        let theirs = rtcp(0x2222);
        assert_eq!(ours.unprotect_rtcp(&far_tx.encrypt_rtcp(&theirs).unwrap()).unwrap(), theirs);
    }
}

#[test]
fn a_replayed_or_forged_packet_is_refused() {
    let k = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    let mut ours = SrtpLeg::new(SrtpKeys { send: SrtpKey::random(Suite::AesCm128HmacSha1_80), receive: k.clone() });
    let mut far = far_end(&k);
    let first = far.encrypt_rtp(&rtp(7, 9, &[1; 20])).unwrap().to_vec();
    assert!(ours.unprotect_rtp(&first).is_ok());
    assert_eq!(ours.unprotect_rtp(&first), Err(SrtpDrop::Refused), "replay");
    let mut forged = far.encrypt_rtp(&rtp(8, 9, &[1; 20])).unwrap().to_vec();
    forged[15] ^= 1;
    assert_eq!(ours.unprotect_rtp(&forged), Err(SrtpDrop::Refused), "payload changed");
    let mut wrong = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: SrtpKey::random(Suite::AesCm128HmacSha1_80) });
    let next = far.encrypt_rtp(&rtp(9, 9, &[1; 20])).unwrap().to_vec();
    assert_eq!(wrong.unprotect_rtp(&next), Err(SrtpDrop::Refused), "another key");
    let plain = rtp(10, 9, &[1; 20]);
    assert_eq!(ours.unprotect_rtp(&plain), Err(SrtpDrop::Refused), "plain RTP is not SRTP");
    // Plain RTCP with 14 bytes more, read as index (E bit clear) and tag:
    // the crate would pass it unchecked, so it never sees it.
    let rtcp_plain = [rtcp(9), vec![0x00, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]].concat();
    assert_eq!(ours.unprotect_rtcp(&rtcp_plain), Err(SrtpDrop::Refused), "unencrypted SRTCP is not taken");
    // The E bit set, the tag wrong.
    let mut forged = far.encrypt_rtcp(&rtcp(9)).unwrap().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(ours.unprotect_rtcp(&forged), Err(SrtpDrop::Refused), "a forged SRTCP tag");
    // A genuine one passes, once.
    let genuine = far.encrypt_rtcp(&rtcp(9)).unwrap().to_vec();
    assert_eq!(ours.unprotect_rtcp(&genuine).unwrap(), rtcp(9));
    assert_eq!(ours.unprotect_rtcp(&genuine), Err(SrtpDrop::Refused), "an SRTCP replay");
}

#[test]
fn the_roll_over_counter_carries_past_sequence_65535() {
    let k = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    let mut ours = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: k.clone() });
    let mut far = far_end(&k);
    for i in 0..40u32 {
        let seq = (65_520 + i) as u16;
        let plain = rtp(seq, 3, &[i as u8; 10]);
        let protected = ours.protect_rtp(&plain).unwrap();
        assert_eq!(far.decrypt_rtp(&protected).unwrap().to_vec(), plain, "seq {seq}");
    }
    // After the wrap the index is 2^16 + seq: a context that never saw the
    // wrap (roll-over counter 0) computes another keystream and tag.
    let mut fresh = far_end(&k);
    let mut late = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: k.clone() });
    for i in 0..40u32 {
        let _ = late.protect_rtp(&rtp((65_520 + i) as u16, 3, &[0; 10]));
    }
    let after_wrap = late.protect_rtp(&rtp(100, 3, &[0; 10])).unwrap();
    assert!(fresh.decrypt_rtp(&after_wrap).is_err());
}

#[test]
fn short_packets_and_too_many_ssrcs_are_dropped_before_the_crate() {
    let k = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    let mut ours = SrtpLeg::new(SrtpKeys { send: k.clone(), receive: k.clone() });
    assert_eq!(ours.unprotect_rtp(&[0x80; 21]), Err(SrtpDrop::TooShort));
    assert_eq!(ours.unprotect_rtcp(&[0x80; 21]), Err(SrtpDrop::TooShort));
    assert_eq!(ours.protect_rtp(&[0x80; 11]), Err(SrtpDrop::TooShort));
    assert_eq!(ours.protect_rtcp(&[0x80; 7]), Err(SrtpDrop::TooShort));
    let mut far = far_end(&k);
    for ssrc in 0..MAX_SSRCS as u32 {
        let p = far.encrypt_rtp(&rtp(1, ssrc, &[0; 4])).unwrap();
        assert!(ours.unprotect_rtp(&p).is_ok());
    }
    let p = far.encrypt_rtp(&rtp(1, 999, &[0; 4])).unwrap();
    assert_eq!(ours.unprotect_rtp(&p), Err(SrtpDrop::TooManySsrcs));
    let p = far.encrypt_rtp(&rtp(2, 0, &[0; 4])).unwrap();
    assert!(ours.unprotect_rtp(&p).is_ok(), "a known SSRC still passes");
}

#[test]
fn rekeying_keeps_an_unchanged_direction() {
    let send = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    let receive = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    let mut ours = SrtpLeg::new(SrtpKeys { send: send.clone(), receive: receive.clone() });
    let mut far = far_end(&receive);
    let p = far.encrypt_rtp(&rtp(5, 1, &[0; 4])).unwrap();
    assert!(ours.unprotect_rtp(&p).is_ok());
    ours.rekey(SrtpKeys { send: SrtpKey::random(Suite::AesCm128HmacSha1_32), receive: receive.clone() });
    assert_eq!(ours.unprotect_rtp(&p), Err(SrtpDrop::Refused), "the replay window survived the re-key");
    let new_receive = SrtpKey::random(Suite::AesCm128HmacSha1_80);
    ours.rekey(SrtpKeys { send: send.clone(), receive: new_receive.clone() });
    let p = far_end(&new_receive).encrypt_rtp(&rtp(5, 1, &[0; 4])).unwrap();
    assert!(ours.unprotect_rtp(&p).is_ok());
}

#[test]
fn a_key_is_never_printed() {
    let k = key(Suite::AesCm128HmacSha1_80, B3_MATERIAL);
    let shown = format!("{:?}", SrtpKeys { send: k.clone(), receive: k });
    assert!(!shown.contains("225") && !shown.contains("e1") && !shown.contains("material"), "{shown}");
}

#[test]
fn suite_names() {
    assert_eq!(Suite::from_name("AES_CM_128_HMAC_SHA1_80"), Some(Suite::AesCm128HmacSha1_80));
    assert_eq!(Suite::from_name("AES_CM_128_HMAC_SHA1_32"), Some(Suite::AesCm128HmacSha1_32));
    assert_eq!(Suite::from_name("AES_256_CM_HMAC_SHA1_80"), None);
    assert_eq!(Suite::from_name("aes_cm_128_hmac_sha1_80"), None);
}
