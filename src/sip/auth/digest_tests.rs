use super::*;

fn keeper() -> NonceKeeper {
    NonceKeeper::new([7; 32], 300)
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

#[test]
fn verify_right_wrong_stale() {
    let k = keeper();
    let nonce = k.issue(1000);
    for alg in [Algorithm::Md5, Algorithm::Sha256] {
        for qop in [true, false] {
            let c = creds_for(&nonce, "secret", alg, qop);
            assert_eq!(verify(&c, "REGISTER", "ha-pbx", "secret", &k, 1010), Verdict::Ok);
            assert_eq!(verify(&c, "REGISTER", "ha-pbx", "wrong", &k, 1010), Verdict::Failed);
            assert_eq!(verify(&c, "INVITE", "ha-pbx", "secret", &k, 1010), Verdict::Failed);
            assert_eq!(verify(&c, "REGISTER", "other", "secret", &k, 1010), Verdict::Failed);
            assert_eq!(verify(&c, "REGISTER", "ha-pbx", "secret", &k, 1000 + 301), Verdict::Stale);
        }
    }
}

#[test]
fn forged_nonce_fails() {
    let k = keeper();
    let other = NonceKeeper::new([8; 32], 300);
    let c = creds_for(&other.issue(1000), "secret", Algorithm::Md5, true);
    assert_eq!(verify(&c, "REGISTER", "ha-pbx", "secret", &k, 1001), Verdict::Failed);
    for junk in ["", ".", "zz.zz", "3e8", "3e8.", "ffffffffffffffffffff.00"] {
        assert_eq!(k.check(junk, 1001), NonceState::Invalid, "{junk}");
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
