//! `tcp://host:port`, the form of a Wyoming service's address.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpAddr {
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for TcpAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "tcp://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "tcp://{}:{}", self.host, self.port)
        }
    }
}

/// The error says what was wrong; the caller prefixes the config field.
pub fn parse_tcp_url(url: &str) -> Result<TcpAddr, String> {
    let hint = "expected tcp://host:port, e.g. tcp://core-whisper:10300";
    let Some(rest) = url.trim().strip_prefix("tcp://") else {
        return Err(format!("`{url}`: {hint}"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!("`{url}`: a Wyoming address has no path, query or user; {hint}"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((host, tail)) = v6.split_once(']') else {
            return Err(format!("`{url}`: unclosed `[`; {hint}"));
        };
        (host, tail.strip_prefix(':'))
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{url}`: no host; {hint}"));
    }
    let Some(port) = port else {
        return Err(format!("`{url}`: no port; {hint}"));
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(TcpAddr { host: host.to_string(), port: p }),
        _ => Err(format!("`{url}`: bad port `{port}`; {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        let a = parse_tcp_url("tcp://core-whisper:10300").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("core-whisper", 10300));
        assert_eq!(parse_tcp_url(" tcp://127.0.0.1:10200/ ").unwrap().to_string(), "tcp://127.0.0.1:10200");
        let a = parse_tcp_url("tcp://[::1]:10200").unwrap();
        assert_eq!((a.host.as_str(), a.to_string().as_str()), ("::1", "tcp://[::1]:10200"));
        for (bad, why) in [
            ("http://h:1", "expected tcp://host:port"),
            ("core-whisper:10300", "expected tcp://host:port"),
            ("tcp://h", "no port"),
            ("tcp://:10300", "no host"),
            ("tcp://h:0", "bad port"),
            ("tcp://h:70000", "bad port"),
            ("tcp://h:x", "bad port"),
            ("tcp://h:1/x", "no path"),
            ("tcp://[::1:5", "unclosed"),
        ] {
            let e = parse_tcp_url(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad.trim()), "{bad}: {e}");
        }
    }
}
