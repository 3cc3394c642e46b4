//! HTTP client for the Supervisor API (`http://supervisor`, plain HTTP on the
//! add-on network): hyper-util's pooled client with a time limit per request
//! and a cap on the size of an answer. Building a request is sans-IO.
use anyhow::{anyhow, bail, Context, Result};
use axum::http::{header, Method, Request, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Larger answers are refused (the Supervisor's are a few kB).
pub const MAX_RESPONSE: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A client bound to one base URL (`http://host[:port][/prefix]`).
#[derive(Clone, Debug)]
pub struct LocalHttpClient {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl LocalHttpClient {
    pub fn new(base_url: &str) -> Result<LocalHttpClient> {
        let uri: Uri = base_url.parse().map_err(|e| anyhow!("`{base_url}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("`{base_url}`: only plain http:// URLs are supported");
        }
        let Some(authority) = uri.authority().filter(|a| !a.host().is_empty()) else {
            bail!("`{base_url}`: no host");
        };
        // `Uri` lets `host:x` through; the connector would fail later, less clearly
        let after_host = authority.as_str().rsplit_once(']').map_or(authority.as_str(), |(_, t)| t);
        if let Some((_, port)) = after_host.rsplit_once(':') {
            port.parse::<u16>().map_err(|_| anyhow!("`{base_url}`: bad port `{port}`"))?;
        }
        if uri.query().is_some() {
            bail!("`{base_url}`: a base URL takes no query");
        }
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        Ok(LocalHttpClient { base: base_url.trim_end_matches('/').to_string(), client })
    }

    /// The base URL it was made with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The request for `base + path`, with a bearer token and a JSON body when given.
    pub fn request(&self, method: Method, path: &str, bearer: Option<&str>, json: Option<&serde_json::Value>) -> Result<Request<Full<Bytes>>> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url.parse().map_err(|e| anyhow!("`{url}` is not a URL: {e}"))?;
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("ha-pbx/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = bearer {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match json {
            Some(v) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v)?)
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body)).context("building the request")
    }

    /// Send, and read the whole answer, within `limit` (connect included).
    pub async fn send(&self, req: Request<Full<Bytes>>, limit: Duration) -> Result<Response> {
        let what = format!("{} {}", req.method(), req.uri());
        tokio::time::timeout(limit, async {
            let resp = self.client.request(req).await.map_err(anyhow::Error::from)?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| anyhow!("reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>(Response { status, body: body.to_vec() })
        })
        .await
        .map_err(|_| anyhow!("no answer within {} s", limit.as_secs_f32()))?
        .with_context(|| what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::json;

    #[test]
    fn base_urls() {
        assert!(LocalHttpClient::new("http://supervisor").is_ok());
        assert!(LocalHttpClient::new("http://127.0.0.1:18080/").is_ok());
        assert!(LocalHttpClient::new("http://[::1]:81/sv/").is_ok());
        let e = LocalHttpClient::new("https://supervisor").unwrap_err().to_string();
        assert!(e.contains("only plain http://"), "{e}");
        assert!(LocalHttpClient::new("http://host:x").is_err());
        assert!(LocalHttpClient::new("supervisor").is_err());
        assert!(LocalHttpClient::new("http://h/?a=1").is_err());
    }

    #[test]
    fn requests_carry_prefix_bearer_and_json() {
        let c = LocalHttpClient::new("http://127.0.0.1:8123/x/").unwrap();
        let r = c.request(Method::GET, "/services/mqtt", Some("tok"), None).unwrap();
        assert_eq!(r.uri().to_string(), "http://127.0.0.1:8123/x/services/mqtt");
        assert_eq!(r.headers()[header::AUTHORIZATION], "Bearer tok");
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));

        let c = LocalHttpClient::new("http://supervisor").unwrap();
        let r = c.request(Method::POST, "/core/api/states/text.x", None, Some(&json!({"state": "s"}))).unwrap();
        assert_eq!(r.uri().to_string(), "http://supervisor/core/api/states/text.x");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert!(!r.headers().contains_key(header::AUTHORIZATION));
        assert!(c.request(Method::GET, "/bad path", None, None).is_err());
    }

    /// A real HTTP server on 127.0.0.1; returns its base URL.
    async fn serve(app: Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://127.0.0.1:{port}")
    }

    impl LocalHttpClient {
        async fn get(&self, path: &str, bearer: Option<&str>, limit: Duration) -> Result<Response> {
            self.send(self.request(Method::GET, path, bearer, None)?, limit).await
        }
        async fn post_json(&self, path: &str, bearer: Option<&str>, body: &serde_json::Value, limit: Duration) -> Result<Response> {
            self.send(self.request(Method::POST, path, bearer, Some(body))?, limit).await
        }
    }

    fn bearer(h: &HeaderMap) -> String {
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string()
    }

    #[tokio::test]
    async fn round_trips_against_a_real_server() {
        let app = Router::new()
            .route("/p/info", get(|h: HeaderMap| async move { bearer(&h) }))
            .route("/p/echo", post(|body: String| async move { (axum::http::StatusCode::CREATED, body) }))
            .route("/p/big", get(|| async { vec![b'x'; MAX_RESPONSE + 1] }));
        let c = LocalHttpClient::new(&format!("{}/p", serve(app).await)).unwrap();
        let t = Duration::from_secs(5);

        let r = c.get("/info", Some("sekrit"), t).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"Bearer sekrit".as_slice()));
        let r = c.post_json("/echo", None, &json!({"state": "/api/hassio_ingress/abc"}), t).await.unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap(), json!({"state": "/api/hassio_ingress/abc"}));
        assert_eq!(c.get("/nothing", None, t).await.unwrap().status, 404);
        let e = format!("{:#}", c.get("/big", None, t).await.unwrap_err());
        assert!(e.contains("reading the answer"), "{e}");
    }

    #[tokio::test]
    async fn silent_server_times_out_and_closed_port_fails() {
        // accepts, then never answers
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _held = l.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let c = LocalHttpClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = c.get("/x", None, Duration::from_millis(300)).await.unwrap_err().to_string();
        assert!(e.contains("no answer within"), "{e}");

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = l.local_addr().unwrap().port();
        drop(l);
        let c = LocalHttpClient::new(&format!("http://127.0.0.1:{dead}")).unwrap();
        assert!(c.get("/x", None, Duration::from_secs(2)).await.is_err());
    }
}
