//! The HTTP(S) client the agent's backends share (OpenAI-compatible
//! services, Home Assistant's REST API): hyper-util's pooled client over
//! rustls with Mozilla's roots built in, so https:// works in an add-on
//! image without a CA store. Only the connect is time-limited here; the
//! pipeline bounds whole requests.
use super::BackendError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::{header, Method, Request, Response, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_rustls::rustls::ClientConfig;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A JSON answer larger than this is refused.
pub const MAX_JSON: usize = 4 * 1024 * 1024;

/// TLS for clients: ring and the webpki roots, built once (also used for wss://).
pub fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let cfg = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_webpki_roots()
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

/// A client bound to one base URL (`http(s)://host[:port][/prefix]`).
#[derive(Clone)]
pub struct HttpClient {
    service: &'static str,
    base: String,
    bearer: Option<String>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the token
        write!(f, "HttpClient({} at {})", self.service, self.base)
    }
}

/// Checks a base URL; the error says what is wrong (the caller names the field).
pub fn check_base_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.trim().parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{url}`: expected an http:// or https:// URL"));
    }
    let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
        return Err(format!("`{url}`: no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("`{url}`: put credentials in api_key/token, not the URL"));
    }
    // `Uri` lets `host:x` through; the connector would fail later, less clearly
    let after_host = authority.as_str().rsplit_once(']').map_or(authority.as_str(), |(_, t)| t);
    if let Some((_, port)) = after_host.rsplit_once(':') {
        port.parse::<u16>().map_err(|_| format!("`{url}`: bad port `{port}`"))?;
    }
    if uri.query().is_some() {
        return Err(format!("`{url}`: a base URL takes no query"));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

impl HttpClient {
    pub fn new(service: &'static str, base_url: &str, bearer: Option<&str>) -> Result<HttpClient, String> {
        let base = check_base_url(base_url)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls_config()).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let bearer = bearer.filter(|t| !t.is_empty()).map(str::to_string);
        Ok(HttpClient { service, base, bearer, client })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The request for `base + path`, with the bearer token when set.
    pub fn request(&self, method: Method, path: &str, content_type: Option<&str>, body: Bytes) -> Result<Request<Full<Bytes>>, BackendError> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|e| self.protocol(format!("`{url}` is not a URL: {e}")))?;
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, concat!("ha-pbx/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = &self.bearer {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Full::new(body)).map_err(|e| self.protocol(format!("building the request: {e}")))
    }

    pub fn json_request(&self, method: Method, path: &str, json: Option<&serde_json::Value>) -> Result<Request<Full<Bytes>>, BackendError> {
        match json {
            Some(v) => {
                let body = serde_json::to_vec(v).map_err(|e| self.protocol(e.to_string()))?;
                self.request(method, path, Some("application/json"), body.into())
            }
            None => self.request(method, path, None, Bytes::new()),
        }
    }

    /// Sends; the answer's body is left to read (streaming). A status other
    /// than 2xx is an error carrying the start of the body.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, BackendError> {
        let what = format!("{} {}", req.method(), req.uri().path());
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| BackendError::Unreachable { service: self.service, detail: format!("{what}: {}", chain(&e)) })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = read_body(self.service, resp, 16 * 1024).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let detail = format!("{what}: {}", text.trim().chars().take(300).collect::<String>());
        Err(BackendError::Status { service: self.service, status: status.as_u16(), detail })
    }

    /// Sends and reads a JSON answer (`null` when the body is empty).
    pub async fn json(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<serde_json::Value, BackendError> {
        let resp = self.send(self.json_request(method, path, body)?).await?;
        let bytes = read_body(self.service, resp, MAX_JSON).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(format!("answer is not JSON: {e}")))
    }

    pub fn protocol(&self, detail: String) -> BackendError {
        BackendError::Protocol { service: self.service, detail }
    }
}

/// The whole body, refusing more than `limit` bytes.
pub async fn read_body(service: &'static str, resp: Response<Incoming>, limit: usize) -> Result<Bytes, BackendError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = next_chunk(service, &mut body).await? {
        if out.len() + frame.len() > limit {
            return Err(BackendError::Protocol { service, detail: format!("answer larger than {limit} bytes") });
        }
        out.extend_from_slice(&frame);
    }
    Ok(out.into())
}

/// The next piece of a streamed body; `None` at its end.
pub async fn next_chunk(service: &'static str, body: &mut Incoming) -> Result<Option<Bytes>, BackendError> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(BackendError::Unreachable { service, detail: format!("reading the answer: {}", chain(&e)) }),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
                // trailers: nothing for us
            }
        }
    }
}

/// An error and its causes on one line (hyper's Display alone says little).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use axum::Router;

    #[test]
    fn base_urls() {
        assert_eq!(check_base_url("https://api.openai.com/").unwrap(), "https://api.openai.com");
        assert_eq!(check_base_url("http://127.0.0.1:11434").unwrap(), "http://127.0.0.1:11434");
        assert_eq!(check_base_url("http://supervisor/core").unwrap(), "http://supervisor/core");
        for (bad, why) in [
            ("tcp://h:1", "http:// or https://"),
            ("localhost:8000", "http:// or https://"),
            ("http://h:x", "bad port"),
            ("http://u:p@h", "credentials"),
            ("http://h/?a=1", "no query"),
            ("", "not a URL"),
        ] {
            let e = check_base_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn requests_carry_prefix_and_bearer() {
        let c = HttpClient::new("t", "https://h.example/x/", Some("tok")).unwrap();
        let r = c.json_request(Method::POST, "/v1/a", Some(&serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(r.uri().to_string(), "https://h.example/x/v1/a");
        assert_eq!(r.headers()[header::AUTHORIZATION], "Bearer tok");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let c = HttpClient::new("t", "http://h", Some("")).unwrap();
        let r = c.json_request(Method::GET, "/a", None).unwrap();
        assert!(!r.headers().contains_key(header::AUTHORIZATION));
        assert!(!format!("{c:?}").contains("tok"));
    }

    #[tokio::test]
    async fn status_errors_carry_the_body_and_refused_connects_are_unreachable() {
        let app = Router::new()
            .route("/ok", get(|| async { "{\"a\": 1}" }))
            .route("/bad", post(|| async { (axum::http::StatusCode::UNAUTHORIZED, "{\"error\":\"bad key\"}") }));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let c = HttpClient::new("svc", &format!("http://127.0.0.1:{port}"), None).unwrap();
        assert_eq!(c.json(Method::GET, "/ok", None).await.unwrap(), serde_json::json!({"a": 1}));
        match c.json(Method::POST, "/bad", None).await.unwrap_err() {
            BackendError::Status { status: 401, detail, .. } => assert!(detail.contains("bad key"), "{detail}"),
            e => panic!("{e}"),
        }
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let c = HttpClient::new("svc", &format!("http://127.0.0.1:{dead_port}"), None).unwrap();
        let e = c.json(Method::GET, "/ok", None).await.unwrap_err();
        assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");
    }

    /// https:// really is TLS, checked against the built-in roots: a
    /// self-signed server is refused (and plain HTTP to it fails too).
    #[tokio::test]
    async fn https_speaks_tls_and_checks_the_certificate() {
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert, key) = (pair.cert.pem(), pair.signing_key.serialize_pem());
        let l = crate::http::wss::TlsListener::bind("127.0.0.1:0".parse().unwrap(), cert.as_bytes(), key.as_bytes()).await.unwrap();
        let port = axum::serve::Listener::local_addr(&l).unwrap().port();
        tokio::spawn(async move { axum::serve(l, Router::new().route("/ok", get(|| async { "{}" }))).await });
        let c = HttpClient::new("svc", &format!("https://127.0.0.1:{port}"), None).unwrap();
        match c.json(Method::GET, "/ok", None).await.unwrap_err() {
            BackendError::Unreachable { detail, .. } => assert!(detail.contains("certificate") || detail.contains("UnknownIssuer"), "{detail}"),
            e => panic!("{e}"),
        }
        let c = HttpClient::new("svc", &format!("http://127.0.0.1:{port}"), None).unwrap();
        assert!(c.json(Method::GET, "/ok", None).await.is_err());
    }
}
