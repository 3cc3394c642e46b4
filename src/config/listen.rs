//! `udp://IP:PORT` style listen addresses.
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// What we listen on and reach a provider over (a device's binding may
/// also be WS or WSS: that is `rsipstack::sip::Transport`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The same transport as rsipstack names it.
    pub fn sip(self) -> rsipstack::sip::Transport {
        match self {
            Transport::Udp => rsipstack::sip::Transport::Udp,
            Transport::Tcp => rsipstack::sip::Transport::Tcp,
            Transport::Tls => rsipstack::sip::Transport::Tls,
        }
    }
}

/// The listener a phone is pointed at (the server in its settings, the QR
/// code's): UDP, which every phone speaks, where we listen on it; else the
/// first one (UDP on 5060 when none is known). `listeners`: each one's
/// transport and port, in the configuration's order.
pub fn phone_listener(listeners: &[(Transport, u16)]) -> (Transport, u16) {
    listeners.iter().find(|(t, _)| *t == Transport::Udp).or(listeners.first()).copied().unwrap_or((Transport::Udp, 5060))
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.transport, self.addr)
    }
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("`{s}` is not of the form udp://IP:PORT, tcp://IP:PORT or tls://IP:PORT"))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => return Err(format!("unknown transport `{other}` in `{s}` (udp, tcp or tls)")),
        };
        let addr = rest
            .parse::<SocketAddr>()
            .map_err(|_| format!("`{rest}` in `{s}` is not an IP:PORT address"))?;
        Ok(ListenAddr { transport, addr })
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_pointed_at_udp_where_we_listen_on_it_else_the_first_listener() {
        assert_eq!(phone_listener(&[(Transport::Tcp, 5070), (Transport::Udp, 5080)]), (Transport::Udp, 5080));
        assert_eq!(phone_listener(&[(Transport::Tls, 5061), (Transport::Tcp, 5060)]), (Transport::Tls, 5061));
        assert_eq!(phone_listener(&[]), (Transport::Udp, 5060));
    }
}
