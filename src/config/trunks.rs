//! `trunks:` (SIP accounts at a phone provider) and `outbound_routes:`
//! (which extension may dial which numbers out over which trunk).
use serde::{Deserialize, Deserializer};
use super::Transport;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// `[a-z0-9_-]`; shown in logs, `/health` and Home Assistant.
    pub name: String,
    /// `host` or `host:port` (port 5060 when absent).
    pub server: String,
    #[serde(default)]
    pub transport: Transport,
    /// `transport: tls`: a PEM file of CA certificates trusted for this
    /// trunk's server besides the built-in public roots (a Fritz!Box or a
    /// provider with its own CA).
    #[serde(default)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// SDES-SRTP (RFC 4568) for the media of this trunk's calls; needs
    /// `transport: tls`, since the keys travel in the SIP messages.
    #[serde(default)]
    pub srtp: SrtpMode,
    #[serde(default, deserialize_with = "opt_text")]
    pub username: Option<String>,
    /// The provider's authentication ID, when it differs from `username`.
    #[serde(default, deserialize_with = "opt_text")]
    pub auth_username: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub password: Option<String>,
    /// Outbound REGISTER as a user agent; false: an IP-authenticated trunk.
    #[serde(default = "yes")]
    pub register: bool,
    /// The number the provider is told calls come from.
    #[serde(default, deserialize_with = "opt_text")]
    pub caller_id: Option<String>,
    /// Addresses (IP, IP:port or a CIDR block) the provider sends calls from.
    #[serde(default)]
    pub inbound_hosts: Vec<String>,
    /// The extension, group or agent that takes this trunk's calls.
    #[serde(default, deserialize_with = "opt_text")]
    pub inbound: Option<String>,
    /// Per dialled number (DID): the extension, group or agent it rings.
    #[serde(default, deserialize_with = "text_map")]
    pub dids: BTreeMap<String, String>,
    /// Registration lifetime asked for; the provider's 200 decides.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// OPTIONS toward the provider this often (0: off); its answers make
    /// the trunk `up`, two missing ones `down`.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u32,
}

/// A trunk's `srtp:`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    /// No keys of ours: SDP passes as the devices write it (as for any call).
    #[default]
    Off,
    /// Our offers are RTP/AVP with an `a=crypto` key: SRTP if the provider
    /// answers with its key, plain RTP if not. Its offers may be either.
    Optional,
    /// RTP/SAVP only, both ways; anything plain is refused (488).
    Mandatory,
}

impl SrtpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpMode::Off => "off",
            SrtpMode::Optional => "optional",
            SrtpMode::Mandatory => "mandatory",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundRoute {
    /// Dialled numbers starting with this go out (longest prefix wins).
    #[serde(deserialize_with = "text")]
    pub prefix: String,
    pub trunk: String,
    /// Digits taken off the front of the dialled number.
    #[serde(default)]
    pub strip: usize,
    /// Put in front after stripping (e.g. `+49`).
    #[serde(default, deserialize_with = "text")]
    pub prepend: String,
    /// Extensions allowed to use this route; nobody else may.
    #[serde(deserialize_with = "text_list")]
    pub extensions: Vec<String>,
    /// Trunks tried in this order when `trunk` does not take the call (no
    /// answer, 5xx, unreachable); a refusal (404, 486...) ends it there.
    #[serde(default, deserialize_with = "text_list")]
    pub failover: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_expires() -> u32 {
    3600
}
fn default_keepalive() -> u32 {
    30
}

/// Phone numbers written unquoted in YAML are numbers; take them as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    S(String),
    I(u64),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Text::S(s) => s,
            Text::I(n) => n.to_string(),
        }
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Text::deserialize(d)?.into_string())
}
fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(Text::into_string))
}
fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Text>::deserialize(d)?.into_iter().map(Text::into_string).collect())
}
fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<TextKey, Text>>::deserialize(d)?.unwrap_or_default();
    Ok(raw.into_iter().map(|(k, v)| (k.0, v.into_string())).collect())
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct TextKey(String);
impl<'de> Deserialize<'de> for TextKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(TextKey(Text::deserialize(d)?.into_string()))
    }
}

/// A trunk's name: 1-32 of `[a-z0-9_-]`.
pub fn valid_trunk_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A number as dialled or sent to a provider: 1-32 of `0-9 + * #`.
pub fn valid_number(n: &str) -> bool {
    !n.is_empty() && n.len() <= 32 && n.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#'))
}

/// A SIP user part we write into headers ourselves (username, caller ID):
/// no characters that could end a header or a URI (nor `#`, which a URI
/// user part cannot hold unescaped).
pub fn valid_user(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '.' | '_' | '-' | '~' | '!'))
}

/// `host` or `host:port` (a bracketed IPv6 literal too), checked for
/// characters a host name cannot hold. Returns host and port (5060 when
/// none is given).
pub fn split_server(s: &str) -> Result<(String, u16), String> {
    split_server_port(s).map(|(h, p)| (h, p.unwrap_or(5060)))
}

/// As `split_server`, the port `None` when `server` names none (a bare host
/// name is then looked up by DNS SRV, RFC 3263).
pub fn split_server_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(|| format!("`{s}`: unclosed `[`"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(format!("`{s}` is not host or host:port")),
        };
        (h.to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
            Some(_) => (s.to_string(), None), // a bare IPv6 address
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}`: `{p}` is not a port number"))?,
        ),
    };
    let host_ok = !host.is_empty() && host.len() <= 253 && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        return Err(format!("`{s}` is not a host name or address"));
    }
    Ok((host, port))
}

/// One `inbound_hosts` entry: an address with a port (that socket only), or
/// an address or CIDR block (any port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundHost {
    Socket(std::net::SocketAddr),
    Block(std::net::IpAddr, u8),
}

impl InboundHost {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Ok(InboundHost::Socket(sa));
        }
        let (ip, bits) = match s.split_once('/') {
            Some((ip, b)) => (ip, Some(b)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("`{s}` is not an IP address, IP:port or CIDR block (host names are not looked up)"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("`{s}`: `/{b}` is not a prefix length up to {max}"))?,
        };
        if bits < 8 {
            return Err(format!("`{s}`: a block wider than /8 would trust half the internet"));
        }
        Ok(InboundHost::Block(ip, bits))
    }

    pub fn matches(&self, source: std::net::SocketAddr) -> bool {
        match *self {
            InboundHost::Socket(sa) => sa == source,
            InboundHost::Block(net, bits) => prefix_match(net, source.ip(), bits),
        }
    }
}

fn prefix_match(net: std::net::IpAddr, ip: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}
