//! The settings a phone needs for one extension's SIP account, as text and
//! as the QR code's payload (`qr.rs`): the same for the administrator's
//! Extensions page and for an extension's own Phone page (sans-IO).
use serde_json::{json, Value};

/// One account's settings. `password` is `None` when ha-pbx keeps no
/// password for the extension (one from the configuration file: only its
/// digest hashes are kept), and then there is no QR code either.
pub(super) fn settings(extension: &str, name: Option<&str>, password: Option<&str>, server: &str, realm: &str) -> Value {
    let shown = password.unwrap_or("the one in ha-pbx's configuration (not kept here)");
    let text = format!(
        "SIP server / registrar / proxy: {server}\nUser name: {extension}\nAuthentication ID: {extension}\nPassword: {shown}\nDomain / realm: {realm}\nTransport: UDP or TCP (the QR code: UDP)\n"
    );
    let qr_text = password.map(|p| super::qr::account_uri(extension, p, server));
    json!({"extension": extension, "name": name, "password": password, "sip_server": server, "settings": text, "qr_text": qr_text})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_password_is_in_the_text_and_the_qr_payload() {
        let v = settings("110", Some("Hall"), Some("s3cret-pass"), "192.168.1.10:5060", "ha-pbx");
        let text = v["settings"].as_str().unwrap();
        assert!(text.contains("Password: s3cret-pass\n") && text.contains("User name: 110\n") && text.contains("Domain / realm: ha-pbx\n"), "{text}");
        assert!(text.contains("Transport: UDP"), "the text names the transport the QR code carries: {text}");
        assert_eq!(v["qr_text"], "sip:110:s3cret-pass@192.168.1.10:5060;transport=udp");
        assert_eq!(v["name"], "Hall");
    }

    #[test]
    fn without_a_kept_password_nothing_pretends_to_be_one() {
        let v = settings("100", None, None, "192.168.1.10:5060", "ha-pbx");
        assert!(v["qr_text"].is_null() && v["password"].is_null(), "{v}");
        assert!(v["settings"].as_str().unwrap().contains("Password: the one in ha-pbx's configuration"), "{v}");
    }
}
