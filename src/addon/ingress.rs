//! Add-on mode's HTTP guard: the ingress listener answers only the
//! Supervisor's ingress proxy (172.30.32.2); anyone else on the LAN gets 403
//! and a log line. Layered onto the HTTP router by `AddonHttp::wrap`, so it
//! covers every route there is (`/`, `/ws`, `/health`, the API).
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Supervisor's ingress proxy on the `hassio` Docker network.
pub const SUPERVISOR_INGRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(172, 30, 32, 2));

#[derive(Debug)]
pub struct IngressGuard {
    allowed: Vec<IpAddr>,
    /// Unix second of the last refusal logged, and refusals not logged since.
    last_log: AtomicU64,
    quiet: AtomicU64,
}

impl IngressGuard {
    pub fn new(allowed: Vec<IpAddr>) -> Arc<IngressGuard> {
        Arc::new(IngressGuard { allowed, last_log: AtomicU64::new(0), quiet: AtomicU64::new(0) })
    }

    /// `HA_PBX_INGRESS_ALLOW` style list: `172.30.32.2` or `127.0.0.2, ::1`.
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<IpAddr>> {
        let list: Vec<IpAddr> = s
            .split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(|_| anyhow::anyhow!("`{p}` is not an IP address")))
            .collect::<anyhow::Result<_>>()?;
        if list.is_empty() {
            anyhow::bail!("no address given");
        }
        Ok(list)
    }

    pub fn allowed(&self) -> &[IpAddr] {
        &self.allowed
    }

    pub fn allows(&self, peer: IpAddr) -> bool {
        self.allowed.contains(&peer.to_canonical())
    }

    /// Wrap a router: every request passes the guard first.
    pub fn layer(self: &Arc<Self>, app: Router) -> Router {
        app.layer(axum::middleware::from_fn_with_state(self.clone(), guard))
    }

    /// One log line per second at most, so a scanner cannot flood the log.
    fn log_refusal(&self, peer: Option<SocketAddr>, method: &str, path: &str) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let last = self.last_log.load(Ordering::Relaxed);
        if now > last && self.last_log.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let quiet = self.quiet.swap(0, Ordering::Relaxed);
            let peer = peer.map(|p| p.ip().to_canonical().to_string()).unwrap_or_else(|| "an unknown address".into());
            tracing::warn!(
                "ingress: refused {method} {path} from {peer} (403): only the Supervisor's ingress proxy ({}) may use this port{}",
                self.allowed.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
                if quiet > 0 { format!("; {quiet} more refusals not logged") } else { String::new() }
            );
        } else {
            self.quiet.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The middleware. Fails closed: without the peer address (a server not
/// started with connect info) every request is refused.
pub async fn guard(State(g): State<Arc<IngressGuard>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    if !peer.is_some_and(|p| g.allows(p.ip())) {
        g.log_refusal(peer, req.method().as_str(), req.uri().path());
        return (StatusCode::FORBIDDEN, "403: only Home Assistant's ingress may use this port\n").into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addon::http_client::LocalHttpClient;
    use axum::routing::get;
    use std::time::Duration;

    /// A real server on 127.0.0.1 (with connect info, as http::serve runs it).
    async fn serve(allowed: &str) -> LocalHttpClient {
        let g = IngressGuard::new(IngressGuard::parse_list(allowed).unwrap());
        let app = g.layer(Router::new().route("/health", get(|| async { "ok" })));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app.into_make_service_with_connect_info::<SocketAddr>()).await });
        LocalHttpClient::new(&format!("http://127.0.0.1:{port}")).unwrap()
    }

    async fn get_status(c: &LocalHttpClient, path: &str) -> (u16, String) {
        let req = c.request(axum::http::Method::GET, path, None, None).unwrap();
        let r = c.send(req, Duration::from_secs(5)).await.unwrap();
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    #[tokio::test]
    async fn allowed_peer_passes_others_get_403() {
        let open = serve("127.0.0.1").await;
        assert_eq!(get_status(&open, "/health").await, (200, "ok".into()));
        let closed = serve("127.0.0.2").await;
        let (status, body) = get_status(&closed, "/health").await;
        assert_eq!(status, 403);
        assert!(body.contains("ingress"));
    }

    #[tokio::test]
    async fn every_path_is_guarded() {
        let closed = serve("127.0.0.2").await;
        for path in ["/", "/ws", "/nothing"] {
            assert_eq!(get_status(&closed, path).await.0, 403, "{path}");
        }
        let open = serve("127.0.0.1").await;
        assert_eq!(get_status(&open, "/nothing").await.0, 404);
    }

    #[test]
    fn allows_canonical_addresses() {
        let g = IngressGuard::new(vec![SUPERVISOR_INGRESS]);
        assert!(g.allows(SUPERVISOR_INGRESS));
        // IPv4-mapped IPv6 (a listener on [::]) counts as the IPv4 address
        assert!(g.allows("::ffff:172.30.32.2".parse().unwrap()));
        assert!(!g.allows("172.30.32.1".parse().unwrap()));
        assert!(!g.allows("192.168.1.50".parse().unwrap()));
    }

    #[test]
    fn allow_lists() {
        assert_eq!(IngressGuard::parse_list("172.30.32.2").unwrap(), vec![SUPERVISOR_INGRESS]);
        assert_eq!(IngressGuard::parse_list("127.0.0.2, ::1").unwrap().len(), 2);
        assert!(IngressGuard::parse_list("").is_err());
        assert!(IngressGuard::parse_list("supervisor").is_err());
    }
}
