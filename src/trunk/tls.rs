//! TLS toward a trunk (`transport: tls`), sans-IO: the name the provider's
//! certificate must hold (`verify_name`), what is trusted (`client_config`:
//! Mozilla's roots built in, plus the trunk's `tls_ca`), and a failed
//! handshake in words for `last_error` and the log (`describe`). There is no
//! way to turn verification off. The connection itself is dialled by
//! `crate::sip::trunk::tls`.
use crate::config::trunks::split_server_port;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore};

/// A `tls_ca` file holds at most this many certificates.
pub const MAX_CA_CERTS: usize = 32;
/// And is at most this large.
pub const MAX_CA_BYTES: u64 = 256 * 1024;

/// The name the provider's certificate is checked against, also sent as
/// SNI: the host of the trunk's `server` as configured, never the target an
/// SRV answer names (RFC 5922 section 4: DNS is not authenticated, so the
/// identity must come from the configuration; a provider serving
/// `_sips._tcp.example.net` presents a certificate for `example.net`). An
/// IP address is checked against the certificate's IP addresses.
pub fn verify_name(server: &str) -> Result<ServerName<'static>, String> {
    let (host, _) = split_server_port(server)?;
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    ServerName::try_from(host.to_string()).map_err(|e| format!("`{host}` cannot be checked against a certificate: {e}"))
}

/// The certificates of a `tls_ca` file (PEM): at least one, at most
/// `MAX_CA_CERTS`, each usable as a trust anchor.
pub fn parse_ca(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no certificate (`-----BEGIN CERTIFICATE-----`)".into());
    }
    if certs.len() > MAX_CA_CERTS {
        return Err(format!("holds {} certificates, at most {MAX_CA_CERTS} are taken", certs.len()));
    }
    let mut store = RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        store.add(c.clone()).map_err(|e| format!("certificate {} is not usable as a CA: {e}", i + 1))?;
    }
    Ok(certs)
}

/// The client side of a trunk's TLS: Mozilla's roots (webpki-roots, built
/// in: an add-on image has no CA store of its own) and `extra` (the trunk's
/// `tls_ca`), with ring; no client certificate.
pub fn client_config(extra: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for (i, c) in extra.iter().enumerate() {
        roots.add(c.clone()).map_err(|e| format!("tls_ca: certificate {} is not usable as a CA: {e}", i + 1))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A handshake with `name` that failed (`err` as tokio-rustls returns it), in
/// words that say what to do about it.
pub fn describe(name: &str, err: &std::io::Error) -> String {
    let Some(e) = err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return format!("TLS handshake with `{name}` failed: {err}");
    };
    let hint = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "it is not signed by a trusted CA (a provider or box with its own CA: set the trunk's tls_ca to that CA's PEM file)",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "it is not made out to this name (server must name the host the certificate is for)"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet (or this machine's clock is wrong)",
            _ => "it does not verify",
        },
        _ => return format!("TLS handshake with `{name}` failed: {e}"),
    };
    format!("TLS: the certificate of `{name}` was refused: {hint} ({e})")
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
