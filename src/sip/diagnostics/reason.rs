//! What one recorded exchange was, in words, and the request line as it may
//! be shown (no credentials, no control characters, bounded).
use serde::Serialize;

/// Longest request line kept (method and Request-URI), in characters.
pub const MAX_REQUEST_LINE: usize = 120;
/// Longest user name kept for an unknown extension, in characters.
pub const MAX_USER: usize = 32;

/// Why the PBX answered as it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reason {
    /// The REGISTER was accepted (bindings added or refreshed).
    Registered,
    /// The REGISTER removed the device's bindings (expires 0).
    Unregistered,
    /// A known extension, wrong credentials.
    WrongPassword,
    /// Credentials for a name that is no extension here.
    UnknownExtension,
    /// This failure started a ban of the address.
    AddressBanned { until_unix: i64 },
    /// This failure started a ban of this name from this address, or the
    /// name was refused unheard because of one.
    ExtensionBanned { until_unix: i64 },
    /// The digest `uri` is not the Request-URI.
    DigestUriMismatch,
    /// Authenticated as one extension, registering another.
    OtherExtension,
    /// The REGISTER could not be understood (Contact, Expires...).
    BadRegister,
    /// The asked lifetime is under `sip.registration.min_expires`.
    IntervalTooBrief,
    /// The call was handed to the callee's devices.
    CallRouted,
    /// No extension, group or outbound route has this number.
    UnknownNumber,
    /// The callee has no registered device.
    CalleeNotRegistered,
    /// `security.max_calls_per_extension` reached.
    TooManyCalls,
    /// Do not disturb.
    Busy,
}

/// `unix` seconds as `2026-12-04 16:20:00 UTC`.
pub fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl Reason {
    /// The reason as the panel shows it.
    pub fn words(&self) -> String {
        match self {
            Reason::Registered => "registered".into(),
            Reason::Unregistered => "unregistered".into(),
            Reason::WrongPassword => "wrong password".into(),
            Reason::UnknownExtension => "unknown extension".into(),
            Reason::AddressBanned { until_unix } => {
                format!("address banned until {}", utc(*until_unix))
            }
            Reason::ExtensionBanned { until_unix } => format!(
                "extension banned from this address until {}",
                utc(*until_unix)
            ),
            Reason::DigestUriMismatch => "digest uri is not the request URI".into(),
            Reason::OtherExtension => "authenticated as another extension".into(),
            Reason::BadRegister => "malformed REGISTER".into(),
            Reason::IntervalTooBrief => "expiry shorter than the minimum".into(),
            Reason::CallRouted => "call sent to the callee's devices".into(),
            Reason::UnknownNumber => "unknown number".into(),
            Reason::CalleeNotRegistered => "callee not registered".into(),
            Reason::TooManyCalls => "too many calls from this extension".into(),
            Reason::Busy => "do not disturb".into(),
        }
    }
}

/// Printable characters of `s`, at most `max` of them (an ellipsis marks a cut).
pub fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(max + 1)
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

/// `METHOD uri` with any password in the URI's user part dropped
/// (`sip:user:secret@host` → `sip:user@host`), printable and bounded.
pub fn request_line(method: &str, uri: &str) -> String {
    let uri = match (uri.find(':'), uri.find('@')) {
        (Some(scheme), Some(at)) if scheme < at => {
            let user_part = &uri[scheme + 1..at];
            match user_part.find(':') {
                Some(colon) => format!("{}{}", &uri[..scheme + 1 + colon], &uri[at..]),
                None => uri.to_string(),
            }
        }
        _ => uri.to_string(),
    };
    printable(&format!("{method} {uri}"), MAX_REQUEST_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_request_line() {
        assert_eq!(
            request_line("REGISTER", "sip:101:hunter2@pbx.lan;transport=tcp"),
            "REGISTER sip:101@pbx.lan;transport=tcp"
        );
        assert_eq!(
            request_line("INVITE", "sip:102@pbx.lan"),
            "INVITE sip:102@pbx.lan"
        );
        assert_eq!(
            request_line("REGISTER", "sip:pbx.lan:5060"),
            "REGISTER sip:pbx.lan:5060"
        );
        assert_eq!(
            request_line("REGISTER", "sips:a:b:c@h"),
            "REGISTER sips:a@h"
        );
    }

    #[test]
    fn control_characters_go_and_length_is_bounded() {
        let line = request_line("INVITE", &format!("sip:{}\r\nX: y\x00@h", "9".repeat(500)));
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(line.chars().count(), MAX_REQUEST_LINE);
        assert!(line.ends_with('…'));
        assert_eq!(printable("abc", 3), "abc");
        assert_eq!(printable("abcd", 3), "ab…");
        assert_eq!(printable("é\u{7}é", 5), "éé");
    }

    #[test]
    fn reasons_in_words() {
        assert_eq!(Reason::WrongPassword.words(), "wrong password");
        assert_eq!(Reason::UnknownExtension.words(), "unknown extension");
        assert_eq!(
            Reason::AddressBanned {
                until_unix: 1_796_401_200
            }
            .words(),
            "address banned until 2026-12-04 16:20:00 UTC"
        );
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
