//! Text → [`Sdp`]. Lenient where devices differ harmlessly (line endings,
//! trailing blanks, unknown attributes), strict where a mistake would later
//! mislead the relay (malformed m= or c=) or the output (control characters).

use super::{Line, Sdp, SdpError};

/// Bodies are a few hundred bytes in practice; the limits only stop abuse.
pub const MAX_BYTES: usize = 64 * 1024;
pub const MAX_LINES: usize = 2048;
/// Each m= line costs a relay (four sockets), so keep it small.
pub const MAX_MEDIA: usize = 16;

pub(super) fn parse(text: &str) -> Result<Sdp, SdpError> {
    if text.len() > MAX_BYTES {
        return Err(SdpError::TooLarge { size: text.len(), limit: MAX_BYTES });
    }
    let mut session = Vec::new();
    let mut media: Vec<Vec<Line>> = Vec::new();
    let mut count = 0usize;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        // trim_end drops the \r of CRLF and any trailing blanks.
        let raw = raw.trim_end();
        if raw.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_LINES {
            return Err(SdpError::TooManyLines { limit: MAX_LINES });
        }
        let line = split_line(number, raw)?;
        if count == 1 && line.kind != b'v' {
            return Err(SdpError::bad_line(number, raw, "SDP must start with v="));
        }
        check_line(number, raw, &line)?;
        match line.kind {
            b'm' => {
                if media.len() == MAX_MEDIA {
                    return Err(SdpError::TooManyMedia { limit: MAX_MEDIA });
                }
                media.push(vec![line]);
            }
            _ => match media.last_mut() {
                Some(section) => section.push(line),
                None => session.push(line),
            },
        }
    }
    if count == 0 {
        return Err(SdpError::Empty);
    }
    Ok(Sdp { session, media })
}

fn split_line(number: usize, raw: &str) -> Result<Line, SdpError> {
    let bytes = raw.as_bytes();
    if bytes.len() < 2 || !bytes[0].is_ascii_alphabetic() || bytes[1] != b'=' {
        return Err(SdpError::bad_line(number, raw, "expected <letter>=<value>"));
    }
    // A stray CR or NUL inside a line would be copied into the SDP we send.
    if raw.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SdpError::bad_line(number, raw, "control character inside the line"));
    }
    // Index 2 is a char boundary: the first two bytes are ASCII.
    Ok(Line { kind: bytes[0], value: raw[2..].to_string() })
}

fn check_line(number: usize, raw: &str, line: &Line) -> Result<(), SdpError> {
    match line.kind {
        b'v' if line.value.trim() != "0" => Err(SdpError::bad_line(number, raw, "only SDP version 0 is known")),
        b'm' => check_media_line(number, raw, &line.value),
        b'c' if line.value.split_ascii_whitespace().count() < 3 => {
            Err(SdpError::bad_line(number, raw, "c= needs network type, address type and address"))
        }
        _ => Ok(()),
    }
}

fn check_media_line(number: usize, raw: &str, value: &str) -> Result<(), SdpError> {
    let mut tokens = value.split_ascii_whitespace();
    let (Some(_kind), Some(port), Some(_proto)) = (tokens.next(), tokens.next(), tokens.next()) else {
        return Err(SdpError::bad_line(number, raw, "m= needs media, port and protocol"));
    };
    let (port, count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    if port.parse::<u16>().is_err() {
        return Err(SdpError::bad_line(number, raw, "m= port is not a number 0-65535"));
    }
    if count.is_some_and(|c| c.parse::<u16>().is_err()) {
        return Err(SdpError::bad_line(number, raw, "m= port count is not a number"));
    }
    Ok(())
}
