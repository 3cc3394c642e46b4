//! Edits a relay makes before passing SDP to the other leg: our address and
//! ports replace the device's, ICE goes (the relay speaks plain RTP), and the
//! rest is left as the device wrote it.

use std::net::IpAddr;

use super::{Direction, Line, Sdp, attribute, net_addr};

impl Sdp {
    /// Points every stream at the relay: all c= become `addr`, m= line `i`
    /// gets `ports[i]` (None, or a missing entry, leaves/sets port 0 so a
    /// disabled stream stays disabled), `a=rtcp` becomes port+1 at `addr`, ICE
    /// lines are dropped and the o= address becomes `addr`. A `/count` after
    /// an m= port is dropped: the relay gives each stream one RTP/RTCP pair.
    pub fn rewrite_for_relay(&mut self, addr: IpAddr, ports: &[Option<u16>]) {
        let conn = net_addr(addr);
        // Decided before c= changes: an RFC 2543 hold is only visible there.
        let legacy_hold: Vec<bool> = (0..self.media_count())
            .map(|i| {
                self.media(i).is_some_and(|m| {
                    m.direction() == Direction::SendRecv && m.connection_addr().is_some_and(|a| a.is_unspecified())
                })
            })
            .collect();
        let session_has_c = self.session.iter().any(|l| l.kind == b'c');

        self.session.retain(|l| !is_ice(l));
        for line in &mut self.session {
            match line.kind {
                b'o' => line.value = origin_with_addr(&line.value, &conn),
                b'c' => line.value = conn.clone(),
                _ => {}
            }
        }
        for (idx, section) in self.media.iter_mut().enumerate() {
            let port = ports.get(idx).copied().flatten();
            section[0].value = with_port(&section[0].value, port.unwrap_or(0));
            let rtcp_port = port.and_then(|p| p.checked_add(1));
            let drop_rtcp = rtcp_port.is_none();
            section.retain(|l| !(is_ice(l) || (drop_rtcp && is_rtcp(l))));
            for line in section.iter_mut() {
                if line.kind == b'c' {
                    line.value = conn.clone();
                } else if let (true, Some(p)) = (is_rtcp(line), rtcp_port) {
                    line.value = format!("rtcp:{p} {conn}");
                }
            }
            if !session_has_c && !section.iter().any(|l| l.kind == b'c') {
                // RFC 8866 order: m=, i=, then c=.
                let at = 1 + section[1..].iter().take_while(|l| l.kind == b'i').count();
                section.insert(at, Line { kind: b'c', value: conn.clone() });
            }
            if legacy_hold[idx] {
                // c= no longer says "hold", so say it with an attribute.
                section.push(Line { kind: b'a', value: "sendonly".into() });
            }
        }
    }

    /// Stream `idx` (and the session) says only `dir`: every direction
    /// attribute goes, and `a=<dir>` ends the stream's section.
    pub fn set_direction(&mut self, idx: usize, dir: Direction) {
        let is_dir = |l: &Line| l.kind == b'a' && matches!(l.value.as_str(), "sendrecv" | "sendonly" | "recvonly" | "inactive");
        self.session.retain(|l| !is_dir(l));
        if let Some(section) = self.media.get_mut(idx) {
            section.retain(|l| !is_dir(l));
            section.push(Line { kind: b'a', value: dir.attribute().into() });
        }
    }

    /// Replaces (or adds) o= so a leg sees one stable session from us
    /// whatever the other device sends. `version` must grow whenever the
    /// SDP sent to that leg changes; [`super::OriginKeeper`] does that.
    pub fn set_origin(&mut self, username: &str, sess_id: u64, version: u64, addr: IpAddr) {
        let username = if username.is_empty() || username.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "-"
        } else {
            username
        };
        let value = format!("{username} {sess_id} {version} {}", net_addr(addr));
        match self.session.iter_mut().find(|l| l.kind == b'o') {
            Some(line) => line.value = value,
            // parse() guarantees session[0] is v=; o= follows it.
            None => self.session.insert(self.session.len().min(1), Line { kind: b'o', value }),
        }
    }

    /// Keeps the payload types of stream `idx` for which `keep` is true, and
    /// drops the rtpmap/fmtp/rtcp-fb lines of the others. Non-numeric formats
    /// are kept. Returns how many payload types remain.
    pub fn retain_payloads(&mut self, idx: usize, mut keep: impl FnMut(u8) -> bool) -> usize {
        let Some(section) = self.media.get_mut(idx) else { return 0 };
        let tokens: Vec<&str> = section[0].value.split_ascii_whitespace().collect();
        if tokens.len() < 3 {
            return 0;
        }
        let mut kept: Vec<&str> = tokens[..3].to_vec();
        let mut removed = Vec::new();
        let mut remaining = 0;
        for format in &tokens[3..] {
            match payload_type(format) {
                Some(pt) if !keep(pt) => removed.push(pt),
                Some(_) => {
                    remaining += 1;
                    kept.push(format);
                }
                None => kept.push(format),
            }
        }
        let line = kept.join(" ");
        section[0].value = line;
        section.retain(|l| !describes_any(l, &removed));
        remaining
    }
}

fn payload_type(format: &str) -> Option<u8> {
    format.parse::<u8>().ok().filter(|pt| *pt < 128)
}

const ICE_ATTRIBUTES: &[&str] = &["candidate", "end-of-candidates", "remote-candidates"];

fn is_ice(line: &Line) -> bool {
    attribute(line).is_some_and(|(name, _)| name.starts_with("ice-") || ICE_ATTRIBUTES.contains(&name))
}

fn is_rtcp(line: &Line) -> bool {
    attribute(line).is_some_and(|(name, _)| name == "rtcp")
}

/// Whether `line` is an rtpmap/fmtp/rtcp-fb line for one of `pts`.
fn describes_any(line: &Line, pts: &[u8]) -> bool {
    let Some((name, Some(value))) = attribute(line) else { return false };
    if !matches!(name, "rtpmap" | "fmtp" | "rtcp-fb") {
        return false;
    }
    let head = value.split_ascii_whitespace().next().unwrap_or("");
    payload_type(head).is_some_and(|pt| pts.contains(&pt))
}

/// `audio 4000/2 RTP/AVP 0 8` + 5000 → `audio 5000 RTP/AVP 0 8`.
fn with_port(m_value: &str, port: u16) -> String {
    let mut tokens = m_value.split_ascii_whitespace();
    let kind = tokens.next().unwrap_or("audio");
    let _old_port = tokens.next();
    let rest: Vec<&str> = tokens.collect();
    if rest.is_empty() { format!("{kind} {port}") } else { format!("{kind} {port} {}", rest.join(" ")) }
}

/// Keeps username, session id and version; replaces the address part.
fn origin_with_addr(o_value: &str, conn: &str) -> String {
    let tokens: Vec<&str> = o_value.split_ascii_whitespace().collect();
    match tokens.as_slice() {
        [user, id, version, ..] => format!("{user} {id} {version} {conn}"),
        _ => format!("- 0 0 {conn}"),
    }
}
