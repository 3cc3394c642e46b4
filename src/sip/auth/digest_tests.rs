use super::*;

use crate::sip::auth::nonces::{NonceLimits, NonceTable};

fn expected_response(c: &Credentials, alg: Algorithm, method: &str, password: &str) -> String {
    response_from_ha1(c, alg, method, &ha1(alg, &c.username, &c.realm, password))
}

/// The stored HA1s of extension 101 with `password`.
fn pw(password: &str) -> Ha1 {
    Ha1::from_password("101", "ha-pbx", password)
}

fn keeper() -> NonceTable {
    NonceTable::new([7; 32], NonceLimits::with_ttl(300))
}

// RFC 2617 §3.5 example values, with our own nonce.
fn creds_for(nonce: &str, password: &str, alg: Algorithm, qop: bool) -> Credentials {
    let mut c = Credentials {
        username: "101".into(),
        realm: "ha-pbx".into(),
        nonce: nonce.into(),
        uri: "sip:127.0.0.1".into(),
        algorithm: Some(alg.name().into()),
        ..Default::default()
    };
    if qop {
        c.qop = Some("auth".into());
        c.nc = Some("00000001".into());
        c.cnonce = Some("0a4f113b".into());
    }
    c.response = expected_response(&c, alg, "REGISTER", password);
    c
}

#[test]
fn an_ha1_without_the_algorithm_fails() {
    let mut k = keeper();
    let phone = "10.0.0.1".parse().unwrap();
    let c = creds_for(&k.issue(phone, 1000), "secret", Algorithm::Sha256, true);
    let md5_only = Ha1 { sha256: None, ..pw("secret") };
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1001), "ha-pbx", Some(&md5_only), &mut k), Verdict::Failed);
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1001), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
}

#[test]
fn md5_known_vector() {
    // RFC 2617 3.5: Mufasa / Circle Of Life, qop=auth.
    let c = Credentials {
        username: "Mufasa".into(),
        realm: "testrealm@host.com".into(),
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
        uri: "/dir/index.html".into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("0a4f113b".into()),
        ..Default::default()
    };
    assert_eq!(expected_response(&c, Algorithm::Md5, "GET", "Circle Of Life"), "6629fae49393a05397450978507c4ef1");
}

#[test]
fn sha256_known_vector() {
    // RFC 7616 3.9.1 (SHA-256, qop=auth).
    let c = Credentials {
        username: "Mufasa".into(),
        realm: "http-auth@example.org".into(),
        nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
        uri: "/dir/index.html".into(),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
        ..Default::default()
    };
    assert_eq!(
        expected_response(&c, Algorithm::Sha256, "GET", "Circle of Life"),
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

const URI: &str = "sip:127.0.0.1";

fn at(method: &'static str, source: &str, now_secs: u64) -> Attempt<'static> {
    Attempt { method, request_uri: URI, source: source.parse().unwrap(), now_secs }
}

#[test]
fn verify_right_wrong_stale() {
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        for qop in [true, false] {
            let mut k = keeper();
            let phone = "10.0.0.1".parse().unwrap();
            let c = creds_for(&k.issue(phone, 1000), "secret", alg, qop);
            assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1010), "ha-pbx", Some(&pw("wrong")), &mut k), Verdict::Failed);
            assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1010), "ha-pbx", None, &mut k), Verdict::Failed);
            assert_eq!(verify(&c, at("INVITE", "10.0.0.1", 1010), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Failed);
            assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1010), "other", Some(&pw("secret")), &mut k), Verdict::Failed);
            assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1301), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Stale);
            assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1010), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
        }
    }
}

#[test]
fn forged_nonce_is_unknown_not_a_failure() {
    let mut k = keeper();
    let mut other = NonceTable::new([8; 32], NonceLimits::with_ttl(300));
    let phone = "10.0.0.1".parse().unwrap();
    let c = creds_for(&other.issue(phone, 1000), "secret", Algorithm::Md5, true);
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1001), "ha-pbx", Some(&pw("wrong")), &mut k), Verdict::UnknownNonce);
}

#[test]
fn a_captured_header_is_spent_once() {
    let mut k = keeper();
    let phone = "10.0.0.1".parse().unwrap();
    for qop in [true, false] {
        let c = creds_for(&k.issue(phone, 1000), "secret", Algorithm::Md5, qop);
        // replayed from elsewhere: unknown there, so a new challenge and no failure
        assert_eq!(verify(&c, at("REGISTER", "10.0.0.66", 1001), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::UnknownNonce);
        assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1001), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
        // the same header again, even from the right address
        assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1002), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Stale);
    }
}

#[test]
fn the_next_count_of_a_nonce_is_accepted() {
    let mut k = keeper();
    let phone = "10.0.0.1".parse().unwrap();
    let mut c = creds_for(&k.issue(phone, 1000), "secret", Algorithm::Md5, true);
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1001), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
    c.nc = Some("00000002".into());
    c.response = expected_response(&c, Algorithm::Md5, "REGISTER", "secret");
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1200), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
    c.nc = Some("3".into());
    c.response = expected_response(&c, Algorithm::Md5, "REGISTER", "secret");
    assert_eq!(verify(&c, at("REGISTER", "10.0.0.1", 1200), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Failed, "nc is 8 hex digits");
}

#[test]
fn digest_uri_must_name_the_request_uri() {
    let mut k = keeper();
    let phone = "10.0.0.1".parse().unwrap();
    let mut c = creds_for(&k.issue(phone, 1000), "secret", Algorithm::Md5, true);
    c.uri = "sip:102@127.0.0.1".into();
    c.response = expected_response(&c, Algorithm::Md5, "INVITE", "secret");
    let to = |uri| Attempt { request_uri: uri, ..at("INVITE", "10.0.0.1", 1001) };
    assert_eq!(verify(&c, to("sip:103@127.0.0.1"), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::UriMismatch);
    assert_eq!(verify(&c, to("sip:127.0.0.1"), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::UriMismatch);
    assert_eq!(verify(&c, to("sip:102@127.0.0.1"), "ha-pbx", Some(&pw("secret")), &mut k), Verdict::Ok);
}

#[test]
fn uri_comparison() {
    for (a, b) in [
        ("sip:102@127.0.0.1:5060", "sip:102@127.0.0.1:5060"),
        ("sip:102@127.0.0.1", "sip:102@127.0.0.1:5060"),
        ("SIP:102@Example.COM;transport=udp", "sip:102@example.com"),
        ("sip:127.0.0.1:5070", "sip:127.0.0.1:5070;transport=tcp"),
        ("sips:[::1]", "sips:[::1]:5061"),
        ("sip:102:pw@h", "sip:102@h"),
        ("sip:127.0.0.1:5070", "sip:102@127.0.0.1:5070"),
    ] {
        assert!(uri_matches(a, b), "{a} vs {b}");
    }
    for (a, b) in [
        ("sip:102@127.0.0.1", "sip:103@127.0.0.1"),
        ("sip:102@127.0.0.1:5060", "sip:102@127.0.0.1:5070"),
        ("sip:127.0.0.1", "sips:127.0.0.1"),
        ("sip:102@127.0.0.1", "sip:102@127.0.0.2"),
        ("sip:", "sip:x"),
        ("tel:102", "sip:102@h"),
        ("sip:h:99999", "sip:h"),
        ("sip:127.0.0.1:5070", "sip:102@127.0.0.1:5071"),
        ("sip:103@127.0.0.1", "sip:127.0.0.1"),
    ] {
        assert!(!uri_matches(a, b), "{a} vs {b}");
    }
}

#[test]
fn parses_real_headers() {
    let h = r#"Digest username="101",realm="ha-pbx", nonce="abc.def", uri="sip:127.0.0.1:5060", response="0123", algorithm=MD5, cnonce="xyz", qop=auth, nc=00000001"#;
    let c = parse_credentials(h).unwrap();
    assert_eq!(c.username, "101");
    assert_eq!(c.uri, "sip:127.0.0.1:5060");
    assert_eq!(c.qop.as_deref(), Some("auth"));
    assert_eq!(c.nc.as_deref(), Some("00000001"));
    assert_eq!(parse_credentials("Basic abc"), Err(ParseError::NotDigest));
    assert_eq!(parse_credentials("Digest username=\"x"), Err(ParseError::Malformed));
    assert_eq!(parse_credentials("Digest realm=\"x\""), Err(ParseError::Missing("username")));
}

#[test]
fn challenge_text() {
    let c = challenge("ha-pbx", "n", Algorithm::Sha256, true);
    assert_eq!(c, "Digest realm=\"ha-pbx\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\", stale=true");
}
