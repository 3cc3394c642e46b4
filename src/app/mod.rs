//! Wires configuration, storage, the event bus, the media engine, the SIP core
//! and HTTP together, and shuts them down in order.
use crate::config::Config;
use crate::events::EventBus;
use crate::media::{MediaConfig, MediaEngine};
use crate::storage::{spawn_binding_writer, spawn_call_history, Store};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub mod first_run;
pub mod idle_collect;

/// `HA_PBX_LOG` (an EnvFilter) wins over `log_level` from the config.
pub fn init_tracing(level: Option<&str>) {
    // rsipstack logs every datagram at info: keep it at warn unless asked.
    let default = format!("{},rsipstack=warn,sqlx=warn", level.unwrap_or("info"));
    let filter = tracing_subscriber::EnvFilter::try_from_env("HA_PBX_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    run_with(config, None).await
}

/// What an embedding adds to a run (the Home Assistant add-on: HTTP only for
/// the Supervisor's ingress proxy, the panel, Home Assistant users'
/// extensions). Implemented by `addon::AddonRuntime`; `app` knows only this.
#[async_trait::async_trait]
pub trait RunExtras: Send {
    /// Home Assistant's API, for the AI agent.
    fn ha_api(&self) -> Option<crate::config::HomeAssistantApi>;
    /// Where `/health` is also served, to the container alone.
    fn health_socket(&self) -> Option<std::path::PathBuf>;
    /// Once the SIP core (and MQTT) are up: start, and say what to add to the HTTP router.
    /// (A directory change reaches MQTT through the bus's `DirectoryChanged`.)
    async fn start(self: Box<Self>, core: crate::sip::core::SipCoreRef) -> anyhow::Result<crate::http::WrapRoutes>;
}

pub async fn run_with(mut config: Config, addon: Option<Box<dyn RunExtras>>) -> anyhow::Result<()> {
    crate::storage::create_private_dir(&config.data_dir).context("data_dir")?;
    // Standalone without http.api_token: an administrator secret kept in
    // data_dir, and a one-time sign-in link for the panel in the log.
    let login_token = match (&addon, &config.http.api_token) {
        (None, None) => {
            let (secret, made) = first_run::admin_secret(&config.data_dir).context("administrator secret")?;
            let file = config.data_dir.join(first_run::ADMIN_TOKEN_FILE);
            if made {
                tracing::info!("no http.api_token: an administrator secret was made and stored in {} (the API's bearer token)", file.display());
            } else {
                tracing::info!("no http.api_token: the administrator secret in {} is the API's bearer token", file.display());
            }
            config.http.api_token = Some(secret);
            Some(crate::http::panel::new_login_token())
        }
        _ => None,
    };
    let config = Arc::new(config);
    let store = Store::open(&config.data_dir).await.context("storage")?;
    match store.load_config_extensions(&config.extensions, &config.sip.realm).await.context("storing extensions")? {
        0 => {}
        n => tracing::info!(extensions = n, "stored passwords replaced by their digest hashes (HA1)"),
    }
    match store.close_open_calls(crate::sip::core::now_unix_ms()).await.context("closing calls left open")? {
        0 => {}
        n => tracing::warn!(calls = n, "call history: calls left open by the last run (it stopped without ending them) closed as pbx_stopped"),
    }
    let bus = EventBus::default();
    let history = spawn_call_history(store.clone(), &bus);
    let binding_writer = spawn_binding_writer(store.clone());

    let (first, last) = config.rtp.port_range()?;
    let media = MediaEngine::new(MediaConfig {
        bind: config.rtp.bind_address(),
        advertise: config.rtp.address,
        port_range: (first, last),
        timeout: Duration::from_secs(config.rtp.media_timeout_secs),
    })
    .context("rtp")?;
    tracing::info!("RTP ports {first}-{last} on {}", config.rtp.address);

    let http_listener = crate::http::bind(config.http.listen).await?;
    let cancel = CancellationToken::new();
    let deps = crate::sip::server::SipDeps { config: config.clone(), store: store.clone(), binding_writer: binding_writer.clone(), bus: bus.clone(), media };
    let core = crate::sip::server::start(deps, cancel.clone()).await?;
    if let Some(agent_config) = config.agent.clone() {
        let ha = addon.as_ref().and_then(|a| a.ha_api());
        let agent = crate::agent::Agent::start(agent_config, ha, store.clone(), bus.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
        crate::sip::agent_leg::start(core.clone(), agent, cancel.clone()).await?;
    }
    tracing::info!("HTTP listening on {}", config.http.listen);
    // Bound before /health answers, so a healthy PBX has every listener up.
    let wss = match config.http.wss_listen {
        Some(addr) => {
            let (cert, key) = crate::sip::tls_cert::load_or_create(&config)?;
            let listener = crate::http::wss::TlsListener::bind(addr, &cert, &key).await?;
            tracing::info!("HTTPS/WSS listening on {addr}");
            Some(tokio::spawn(crate::http::serve_tls(listener, core.clone())))
        }
        None => None,
    };
    // MQTT bridge to Home Assistant (off without an `mqtt` section); lives until run() returns.
    let _mqtt = config.mqtt.clone().map(|m| crate::mqtt::MqttBridge::start(m, core.clone())).transpose().context("mqtt")?;
    let health_socket = match addon.as_ref().and_then(|a| a.health_socket()) {
        Some(path) => {
            let listener = crate::http::bind_health_socket(&path).await?;
            tracing::info!("/health also on the Unix socket {} (the image's HEALTHCHECK)", path.display());
            Some(tokio::spawn(crate::http::serve_health_socket(listener, core.clone())))
        }
        None => None,
    };
    let addon_http: Option<crate::http::WrapRoutes> = match addon {
        Some(a) => Some(a.start(core.clone()).await.context("add-on")?),
        None => {
            // Standalone: the panel (add-on mode has its ingress panel instead).
            let panel = crate::http::panel::Panel::new(login_token.clone());
            let panel_core = core.clone();
            Some(Box::new(move |router| crate::http::panel::layer(router, panel_core, panel)))
        }
    };
    let http = tokio::spawn(crate::http::serve_guarded(http_listener, core.clone(), addon_http));
    tracing::info!(extensions = config.extensions.len(), data_dir = %config.data_dir.display(), "ha-pbx {} ready", env!("CARGO_PKG_VERSION"));
    if let Some(token) = &login_token {
        let url = first_run::panel_url(config.http.listen, config.rtp.address);
        tracing::info!("panel: {url} ; sign in as administrator once with {url}?login={token}");
    }

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        r = http => { r??; }
        Some(r) = async { match wss { Some(t) => Some(t.await), None => None } } => { r??; }
        Some(r) = async { match health_socket { Some(t) => Some(t.await), None => None } } => { r??; }
    }
    // Trunks take their registrations back while SIP still runs.
    core.unregister_trunks(Duration::from_secs(5)).await;
    cancel.cancel();
    drop(core);
    // Registrations written so far must reach the disk before we exit.
    binding_writer.flush().await;
    history.abort();
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
