//! The settings a phone needs for one extension's SIP account, as text and
//! as the QR code's payload (`qr.rs`): the same for the administrator's
//! Extensions page and for an extension's own Phone page (sans-IO).
use super::qr::account_uri;
use crate::config::{phone_listener, Transport};
use crate::sip::core::SipCore;
use serde_json::{json, Value};

/// Where a phone reaches ha-pbx: the host (IPv6 in brackets) and each
/// listener's transport and port, in the configuration's order.
pub(super) struct Reach {
    pub host: String,
    pub transports: Vec<(Transport, u16)>,
}

impl Reach {
    /// Ours, as the SIP core advertises and listens.
    pub fn of(core: &SipCore) -> Reach {
        Reach { host: core.sip_host(), transports: core.sip_transports() }
    }
}

/// One account's settings. `password` is `None` when ha-pbx keeps no
/// password for the extension (one from the configuration file: only its
/// digest hashes are kept), and then there is no QR code either. The
/// server named is the listener the QR code names.
pub(super) fn settings(extension: &str, name: Option<&str>, password: Option<&str>, reach: &Reach, realm: &str) -> Value {
    let shown = password.unwrap_or("the one in ha-pbx's configuration (not kept here)");
    let (qr, port) = phone_listener(&reach.transports);
    let server = format!("{}:{port}", reach.host);
    let listed: Vec<String> = reach.transports.iter().map(|(t, p)| format!("{} (port {p})", t.as_str().to_uppercase())).collect();
    let listed = if listed.is_empty() { "UDP (port 5060)".to_string() } else { listed.join(", ") };
    let text = format!(
        "SIP server / registrar / proxy: {server}\nUser name: {extension}\nAuthentication ID: {extension}\nPassword: {shown}\nDomain / realm: {realm}\nTransport: {listed}; the QR code: {}\n",
        qr.as_str().to_uppercase()
    );
    let qr_text = password.map(|p| account_uri(extension, p, &reach.host, (qr, port)));
    json!({"extension": extension, "name": name, "password": password, "sip_server": server, "settings": text, "qr_text": qr_text})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan() -> Reach {
        Reach { host: "192.168.1.10".into(), transports: vec![(Transport::Udp, 5060), (Transport::Tcp, 5060), (Transport::Tls, 5061)] }
    }

    #[test]
    fn a_kept_password_is_in_the_text_and_the_qr_payload() {
        let v = settings("110", Some("Hall"), Some("s3cret-pass"), &lan(), "ha-pbx");
        let text = v["settings"].as_str().unwrap();
        assert!(text.contains("Password: s3cret-pass\n") && text.contains("User name: 110\n") && text.contains("Domain / realm: ha-pbx\n"), "{text}");
        assert!(text.contains("Transport: UDP (port 5060), TCP (port 5060), TLS (port 5061); the QR code: UDP\n"), "every listener, and the one the QR code carries: {text}");
        assert_eq!(v["qr_text"], "sip:110:s3cret-pass@192.168.1.10:5060;transport=udp");
        assert_eq!(v["name"], "Hall");
    }

    #[test]
    fn without_udp_the_settings_and_the_code_name_the_first_listener() {
        let tls_only = Reach { host: "[fd00::1]".into(), transports: vec![(Transport::Tls, 5061), (Transport::Tcp, 5070)] };
        let v = settings("110", None, Some("pw"), &tls_only, "ha-pbx");
        assert_eq!(v["qr_text"], "sip:110:pw@[fd00::1]:5061;transport=tls");
        assert_eq!(v["sip_server"], "[fd00::1]:5061");
        let text = v["settings"].as_str().unwrap();
        assert!(text.contains("SIP server / registrar / proxy: [fd00::1]:5061\n") && text.contains("Transport: TLS (port 5061), TCP (port 5070); the QR code: TLS\n"), "{text}");
    }

    #[test]
    fn without_a_kept_password_nothing_pretends_to_be_one() {
        let v = settings("100", None, None, &lan(), "ha-pbx");
        assert!(v["qr_text"].is_null() && v["password"].is_null(), "{v}");
        assert!(v["settings"].as_str().unwrap().contains("Password: the one in ha-pbx's configuration"), "{v}");
    }
}
