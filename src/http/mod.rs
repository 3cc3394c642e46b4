//! HTTP server (axum): /health, and the call-control API (`api`).
mod api;
pub mod panel;
pub mod sip_core;
mod sip_ws;
pub mod wss;
pub use sip_ws::{BrowserUser, BrowserUsers};
use crate::sip::core::SipCoreRef;
use axum::extract::{ConnectInfo, State};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::time::Duration;

pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("http.listen: cannot listen on {addr}: {e}"))
}

pub async fn serve(listener: tokio::net::TcpListener, core: SipCoreRef) -> anyhow::Result<()> {
    serve_guarded(listener, core, None).await
}

/// The same routes over TLS (`http.wss_listen`), WebSockets there being `wss`.
pub async fn serve_tls(listener: wss::TlsListener, core: SipCoreRef) -> anyhow::Result<()> {
    let header_timeout = header_timeout(&core);
    let app = routes(core).layer(axum::Extension(wss::Secure));
    serve_http1(listener, app, header_timeout).await
}

fn header_timeout(core: &SipCoreRef) -> Duration {
    Duration::from_secs(core.config.security.http_header_timeout_secs)
}

/// axum's `serve` without its one gap: a client must send each request's
/// whole header within `header_timeout` (`security.http_header_timeout_secs`),
/// or its connection is closed; a slowloris client cannot hold sockets and
/// tasks by trickling a header forever. HTTP/1.1 with upgrades (WebSockets).
async fn serve_http1<L>(mut listener: L, app: Router, header_timeout: Duration) -> anyhow::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    loop {
        let (io, peer) = listener.accept().await;
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            if let Err(e) = builder.serve_connection(TokioIo::new(io), service).with_upgrades().await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

fn routes(core: SipCoreRef) -> Router {
    Router::new().route("/health", get(health)).route("/metrics", get(metrics)).route("/ws", get(sip_ws::upgrade)).merge(api::routes(core.clone())).with_state(core)
}

/// What an embedding adds to the router (add-on mode: the panel, the Home
/// Assistant users' directory as a [`BrowserUsers`] extension, and the guard
/// that lets only the Supervisor's ingress proxy in).
pub type WrapRoutes = Box<dyn FnOnce(Router) -> Router + Send>;

pub async fn serve_guarded(listener: tokio::net::TcpListener, core: SipCoreRef, wrap: Option<WrapRoutes>) -> anyhow::Result<()> {
    let mut app = routes(core.clone());
    if let Some(wrap) = wrap {
        app = wrap(app);
    }
    serve_http1(listener, app, header_timeout(&core)).await
}

/// `/health` alone on a Unix socket (add-on mode's `HA_PBX_HEALTH_SOCKET`): the
/// image's `HEALTHCHECK` asks it with `curl --unix-socket`. A socket file is private
/// to the container (the add-on shares the host's network, not its filesystem), so
/// it needs no guard. A stale file from an earlier run is replaced.
pub async fn bind_health_socket(path: &std::path::Path) -> anyhow::Result<tokio::net::UnixListener> {
    let fail = |e: std::io::Error| anyhow::anyhow!("health socket: cannot listen on {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    tokio::net::UnixListener::bind(path).map_err(fail)
}

pub async fn serve_health_socket(listener: tokio::net::UnixListener, core: SipCoreRef) -> anyhow::Result<()> {
    axum::serve(listener, Router::new().route("/health", get(health)).with_state(core)).await?;
    Ok(())
}

async fn health(State(core): State<SipCoreRef>) -> Json<serde_json::Value> {
    let s = core.stats();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "registered_extensions": s.registered_extensions,
        "bindings": s.bindings,
        "active_calls": s.active_calls,
        "media_relays": s.media_relays,
        // rsipstack's own tables: a steady rise under constant load is a leak.
        "sip_dialogs": s.sip_dialogs,
        "sip_transactions": s.sip_transactions,
        "sip_finished_transactions": s.sip_finished_transactions,
        // kept for retransmissions, at most 65,536: above that the oldest are pushed out (counted here)
        "sip_finished_evicted": s.sip_finished_evicted,
        "sip_waiting_ack": s.sip_waiting_ack,
        // messages waiting for the SIP stack; past 8,192 new requests get 503, past 16,384 UDP ones are dropped
        "sip_backlog": s.sip_backlog,
        "sip_shed_refused": s.sip_shed_refused,
        "sip_shed_dropped": s.sip_shed_dropped,
        // SUBSCRIBE dialogs (BLF, MWI), bounded by sip.subscriptions.max_total.
        "subscriptions": s.subscriptions,
        // Each trunk: registration state and last error, provider address, last caller.
        "trunks": core.trunk_states(),
        // The AI agent: null without one; false until its greeting and apology are rendered.
        "agent": core.agent().map(|a| serde_json::json!({
            "extension": a.extension,
            "ready": a.service.prompts.ready(!a.service.config.greeting.is_empty()),
        })),
    }))
}

/// Prometheus text: the AI agent's per-turn figures (empty without an agent).
async fn metrics(State(core): State<SipCoreRef>) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let mut out = String::new();
    if let Some(a) = core.agent() {
        a.service.metrics.render(&mut out);
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
