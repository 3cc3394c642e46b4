//! The QR code of a phone's settings on the Extensions page (sans-IO: text
//! in, SVG out). Its payload is the SIP account as one SIP URI with the
//! password in its user part (RFC 3261 §19.1.1's `userinfo`):
//!
//! ```text
//! sip:110:PASSWORD@192.168.1.10:5060;transport=udp
//!     ^user ^password ^server (the registrar, proxy and domain) ^transport
//! ```
//!
//! Softphones that read a SIP URI from a QR code take the account from it;
//! for the others a person reads the same fields off the settings text.
//! Characters that RFC 3261 does not allow bare in a user or password
//! (`#`, `:`, `@`, spaces, non-ASCII...) are percent-encoded, so the URI
//! always reads back to the same account.
use crate::config::Transport;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// Longest payload made into a code (an extension is at most 32
/// characters and a password 128 bytes, so a real account is far shorter;
/// a QR code at error correction M holds 2331 bytes).
pub const MAX_PAYLOAD: usize = 1024;

/// The account as a SIP URI: `sip:USER:PASSWORD@HOST:PORT;transport=udp`,
/// over one of our listeners ([`crate::sip::core::SipCore::sip_host`], a
/// listener's transport and port).
pub fn account_uri(extension: &str, password: &str, host: &str, (transport, port): (Transport, u16)) -> String {
    format!("sip:{}:{}@{host}:{port};transport={transport}", escape(extension, USER_EXTRA), escape(password, PASSWORD_EXTRA))
}

/// What RFC 3261 allows bare beside the alphanumerics and its `mark`s.
const USER_EXTRA: &str = "&=+$,;?/";
const PASSWORD_EXTRA: &str = "&=+$,";
const MARK: &str = "-_.!~*'()";

fn escape(s: &str, extra: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric() || MARK.contains(c) || extra.contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The code of `payload` as an SVG document (black on white, a quiet zone,
/// at least 256 px wide). Err names why when the payload is too long.
pub fn svg(payload: &str) -> Result<String, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("qr: the settings are {} bytes, more than the {MAX_PAYLOAD} a code is made of here", payload.len()));
    }
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).map_err(|e| format!("qr: {e}"))?;
    Ok(code.render::<svg::Color>().min_dimensions(256, 256).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDP: (Transport, u16) = (Transport::Udp, 5060);

    #[test]
    fn plain_account() {
        assert_eq!(account_uri("110", "Ab3dEf9hIj", "192.168.1.10", UDP), "sip:110:Ab3dEf9hIj@192.168.1.10:5060;transport=udp");
        assert_eq!(account_uri("110", "pw", "[fd00::1]", UDP), "sip:110:pw@[fd00::1]:5060;transport=udp");
        assert_eq!(account_uri("110", "pw", "h", (Transport::Tls, 5061)), "sip:110:pw@h:5061;transport=tls");
    }

    #[test]
    fn characters_that_would_break_the_uri_are_escaped() {
        // `:` and `@` would end the password, `#` is not allowed in a user, `;` not in a password
        assert_eq!(account_uri("12#", "a:b@c;d e%", "h", UDP), "sip:12%23:a%3Ab%40c%3Bd%20e%25@h:5060;transport=udp");
        assert_eq!(account_uri("1*2+3", "pä$s", "h", UDP), "sip:1*2+3:p%C3%A4$s@h:5060;transport=udp");
        // what stays bare is exactly RFC 3261's user / password characters
        assert_eq!(escape("-_.!~*'()&=+$,;?/", USER_EXTRA), "-_.!~*'()&=+$,;?/");
        assert_eq!(escape(";?/", PASSWORD_EXTRA), "%3B%3F%2F");
    }

    #[test]
    fn svg_of_a_payload() {
        let s = svg(&account_uri("110", &"x".repeat(128), "192.168.1.10", UDP)).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg") && s.ends_with("</svg>"), "{s}");
        assert!(s.contains("<path fill=\"#000\""), "{s}");
    }

    #[test]
    fn too_long_a_payload_is_refused_by_name() {
        let e = svg(&"x".repeat(MAX_PAYLOAD + 1)).unwrap_err();
        assert!(e.starts_with("qr:") && e.contains("1025 bytes"), "{e}");
        // the longest real account fits: 32-character extension, 128 bytes of escaped password
        let longest = account_uri(&"#".repeat(32), &"ä".repeat(64), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]", (Transport::Tls, 65535));
        assert!(longest.len() <= MAX_PAYLOAD && svg(&longest).is_ok(), "{}", longest.len());
    }
}
