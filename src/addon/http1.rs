//! A tiny HTTP/1.1 GET client over a tokio TcpStream, enough for the
//! Supervisor API (`http://supervisor`, plain HTTP on the add-on network):
//! one request per connection (`Connection: close`), body by Content-Length,
//! chunked or end of stream. Response parsing is sans-IO and unit-tested.
use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Larger answers are refused (the Supervisor's are a few kB).
const MAX_RESPONSE: usize = 1024 * 1024;

/// `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub host: String,
    pub port: u16,
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("`{url}`: only plain http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| anyhow!("`{url}`: unclosed [ in host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| anyhow!("`{url}`: bad port `{p}`"))?,
                None => 80,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| anyhow!("`{url}`: bad port `{p}`"))?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            bail!("`{url}`: no host");
        }
        Ok(BaseUrl { host, port, prefix: path.to_string() })
    }

    fn host_header(&self) -> String {
        let h = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 { h } else { format!("{h}:{}", self.port) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The request bytes for `GET prefix+path`.
pub fn request(base: &BaseUrl, path: &str, bearer: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET {}{} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: ha-pbx/{}\r\nConnection: close\r\n",
        base.prefix,
        path,
        base.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = bearer {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// GET with a total time limit (connect, send, read).
pub async fn get(base: &BaseUrl, path: &str, bearer: Option<&str>, limit: Duration) -> Result<Response> {
    tokio::time::timeout(limit, async {
        let mut s = TcpStream::connect((base.host.as_str(), base.port))
            .await
            .with_context(|| format!("cannot connect to {}:{}", base.host, base.port))?;
        s.write_all(&request(base, path, bearer)).await.context("sending the request")?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.context("reading the response")?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE {
                bail!("response larger than {MAX_RESPONSE} bytes");
            }
            // Stop as soon as a framed body is complete (some servers keep
            // the connection open despite `Connection: close`).
            if let Ok(Some(_)) = complete(&buf) {
                break;
            }
        }
        parse_response(&buf)
    })
    .await
    .map_err(|_| anyhow!("no answer within {} s", limit.as_secs_f32()))?
}

/// Parse a whole response (status line, headers, body).
pub fn parse_response(buf: &[u8]) -> Result<Response> {
    match complete(buf)? {
        Some(r) => Ok(r),
        None => {
            // Not framed: the body ran to the end of the stream.
            let (status, _, body_at) = head(buf)?.ok_or_else(|| anyhow!("connection closed before the end of the headers"))?;
            Ok(Response { status, body: buf[body_at..].to_vec() })
        }
    }
}

/// `Some` when the buffer holds a whole framed response (Content-Length or
/// chunked); `None` when more may come or the body runs to end of stream.
fn complete(buf: &[u8]) -> Result<Option<Response>> {
    let Some((status, headers, body_at)) = head(buf)? else {
        return Ok(None);
    };
    let body = &buf[body_at..];
    let header = |name: &str| {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Ok(dechunk(body)?.map(|body| Response { status, body }));
    }
    if let Some(len) = header("content-length") {
        let len: usize = len.trim().parse().map_err(|_| anyhow!("bad Content-Length `{len}`"))?;
        if body.len() >= len {
            return Ok(Some(Response { status, body: body[..len].to_vec() }));
        }
        return Ok(None);
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some(Response { status, body: Vec::new() }));
    }
    Ok(None)
}

type Head = (u16, Vec<(String, String)>, usize);

fn head(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| anyhow!("response headers are not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x response: `{status_line}`");
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line `{status_line}`"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some((status, headers, end + 4)))
}

/// Decode a chunked body; `None` until the last chunk has arrived.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| anyhow!("bad chunk size"))?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| anyhow!("bad chunk size `{size_hex}`"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(BaseUrl::parse("http://supervisor").unwrap(), BaseUrl { host: "supervisor".into(), port: 80, prefix: "".into() });
        assert_eq!(
            BaseUrl::parse("http://127.0.0.1:18080/").unwrap(),
            BaseUrl { host: "127.0.0.1".into(), port: 18080, prefix: "".into() }
        );
        assert_eq!(BaseUrl::parse("http://[::1]:81/sv/").unwrap(), BaseUrl { host: "::1".into(), port: 81, prefix: "/sv".into() });
        assert!(BaseUrl::parse("https://supervisor").is_err());
        assert!(BaseUrl::parse("http://host:x").is_err());
        assert!(BaseUrl::parse("http://").is_err());
    }

    #[test]
    fn request_carries_bearer_and_host() {
        let b = BaseUrl::parse("http://127.0.0.1:8123/x").unwrap();
        let r = String::from_utf8(request(&b, "/services/mqtt", Some("tok"))).unwrap();
        assert!(r.starts_with("GET /x/services/mqtt HTTP/1.1\r\nHost: 127.0.0.1:8123\r\n"), "{r}");
        assert!(r.contains("Authorization: Bearer tok\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
        let b = BaseUrl::parse("http://supervisor").unwrap();
        let r = String::from_utf8(request(&b, "/info", None)).unwrap();
        assert!(r.contains("Host: supervisor\r\n") && !r.contains("Authorization"));
    }

    #[test]
    fn content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": true}";
        assert_eq!(parse_response(raw).unwrap(), Response { status: 200, body: b"{\"a\": true}".to_vec() });
        // incomplete: not framed yet
        assert_eq!(complete(&raw[..raw.len() - 2]).unwrap(), None);
    }

    #[test]
    fn chunked_body() {
        let raw = b"HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), Response { status: 400, body: b"hello world".to_vec() });
        assert_eq!(complete(&raw[..raw.len() - 5]).unwrap(), None);
    }

    #[test]
    fn body_to_end_of_stream() {
        let raw = b"HTTP/1.0 403 Forbidden\r\n\r\nno";
        assert_eq!(complete(raw).unwrap(), None);
        assert_eq!(parse_response(raw).unwrap(), Response { status: 403, body: b"no".to_vec() });
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-").is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
    }
}
