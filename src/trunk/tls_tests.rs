use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ClientConnection, ServerConfig, ServerConnection};

/// A test CA and a server certificate it signed for `names`.
struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "test provider CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    Pki { ca: ca.der().clone(), ca_pem: ca.pem(), chain: vec![leaf.der().clone()], key: key.serialize_der() }
}

/// A whole handshake in memory (no sockets): the client's verdict.
fn handshake(client: Arc<ClientConfig>, name: ServerName<'static>, p: &Pki) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key.clone()));
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(p.chain.clone(), key)
        .unwrap();
    let mut c = ClientConnection::new(client, name)?;
    let mut s = ServerConnection::new(Arc::new(server)).unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut buf.as_slice()).unwrap();
        s.process_new_packets().unwrap();
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        c.read_tls(&mut buf.as_slice()).unwrap();
        c.process_new_packets()?;
        if !c.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn the_name_verified_is_the_configured_host_never_an_srv_target() {
    // a bare domain (looked up by SRV `_sips._tcp.example.net`): the domain itself
    assert_eq!(verify_name("example.net").unwrap(), ServerName::try_from("example.net").unwrap());
    assert_eq!(verify_name("sip.example.net:5061").unwrap(), ServerName::try_from("sip.example.net").unwrap());
    assert_eq!(verify_name("example.net.").unwrap(), ServerName::try_from("example.net").unwrap());
    // an address: the certificate's IP addresses
    assert!(matches!(verify_name("192.0.2.10:5061").unwrap(), ServerName::IpAddress(_)));
    assert!(matches!(verify_name("[2001:db8::1]:5061").unwrap(), ServerName::IpAddress(_)));
    assert!(verify_name("bad host").is_err());
}

#[test]
fn a_certificate_from_the_trunks_tls_ca_is_accepted_for_its_name() {
    let p = pki(&["provider.test"]);
    let ca = parse_ca(p.ca_pem.as_bytes()).unwrap();
    assert_eq!(ca, vec![p.ca.clone()]);
    handshake(client_config(&ca).unwrap(), verify_name("provider.test:5061").unwrap(), &p).unwrap();
}

#[test]
fn without_tls_ca_a_private_ca_is_refused_with_a_hint() {
    let p = pki(&["provider.test"]);
    let err = handshake(client_config(&[]).unwrap(), verify_name("provider.test").unwrap(), &p).unwrap_err();
    assert_eq!(err, rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
    let text = describe("provider.test", &std::io::Error::new(std::io::ErrorKind::InvalidData, err));
    assert!(text.contains("`provider.test`") && text.contains("not signed by a trusted CA") && text.contains("tls_ca"), "{text}");
}

#[test]
fn a_certificate_for_another_name_is_refused_even_from_the_trusted_ca() {
    // what an SRV answer pointing at a host with its own valid certificate
    // would be: the name checked stays the configured one
    let p = pki(&["sip1.other.test"]);
    let ca = parse_ca(p.ca_pem.as_bytes()).unwrap();
    let err = handshake(client_config(&ca).unwrap(), verify_name("provider.test").unwrap(), &p).unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })),
        "{err:?}"
    );
    let text = describe("provider.test", &std::io::Error::new(std::io::ErrorKind::InvalidData, err));
    assert!(text.contains("not made out to this name"), "{text}");
    // an IP address is not a name the certificate holds either
    let err = handshake(client_config(&ca).unwrap(), verify_name("127.0.0.1:5061").unwrap(), &p).unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");
}

#[test]
fn tls_ca_files_that_are_not_a_ca_list_are_refused() {
    assert!(parse_ca(b"").unwrap_err().contains("no certificate"));
    assert!(parse_ca(b"hello\n").unwrap_err().contains("no certificate"));
    let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
    assert!(parse_ca(broken.as_bytes()).is_err());
    let p = pki(&["provider.test"]);
    let many = p.ca_pem.repeat(MAX_CA_CERTS + 1);
    assert!(parse_ca(many.as_bytes()).unwrap_err().contains("at most"));
    assert_eq!(parse_ca(p.ca_pem.repeat(2).as_bytes()).unwrap().len(), 2);
}

#[test]
fn other_failures_are_described_with_their_cause() {
    let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
    assert_eq!(describe("provider.test", &e), "TLS handshake with `provider.test` failed: connection reset by peer");
    let e = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(CertificateError::Expired));
    assert!(describe("x.test", &e).contains("expired"));
}
