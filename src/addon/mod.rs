//! Add-on mode: ha-pbx running as a Home Assistant add-on.
//!
//! On when `--addon` is given, or when `SUPERVISOR_TOKEN` is set and no
//! `--config` is. Then:
//! 1. `/data/options.json` (the Configuration tab) is read and checked
//!    ([`options`]); errors name the option and stop start-up;
//! 2. the Supervisor is asked ([`supervisor`]) for the MQTT broker (unless
//!    the options name one), the ingress port and, when `external_address`
//!    is empty, the host's primary address. A Supervisor that cannot be
//!    reached is logged with the reason and the PBX starts anyway (no MQTT);
//! 3. the normal [`Config`] is built (data in the options' folder, SIP on the
//!    option ports, HTTP on the ingress port) and run, with the HTTP listener
//!    behind [`IngressGuard`] (only the Supervisor's ingress proxy gets in);
//! 4. once the SIP core is up ([`AddonRuntime::start`]): Home Assistant
//!    users get extensions from the ingress headers ([`HaUserDirectory`]),
//!    the panel at `/` shows the SIP Core configuration ([`panel`]), and the
//!    `text.asterisk_addon_ingress_entry` state is kept set ([`ingress_entry`]).
//!
//! For tests, environment variables move what the add-on container fixes:
//! `HA_PBX_OPTIONS` (options file; its folder is the data folder),
//! `HA_PBX_SUPERVISOR_URL`, `HA_PBX_INGRESS_ALLOW` (addresses let through),
//! `HA_PBX_ADDON_BIND` (address the sockets bind to, default 0.0.0.0).
pub mod agent_options;
pub mod ha_admins;
pub mod ha_users;
mod http_client;
pub mod ingress;
pub mod ingress_entry;
pub mod ingress_roles;
pub mod options;
pub mod trunk_options;
pub mod panel;
pub mod security_options;
pub mod supervisor;
pub mod user_directory;
mod option_values;

pub use ingress::IngressGuard;
pub use user_directory::HaUserDirectory;

use crate::config::{Config, MqttConfig};
use anyhow::{Context, Result};
use options::AddonOptions;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use supervisor::{ApiError, Supervisor};

pub const ENV_TOKEN: &str = "SUPERVISOR_TOKEN";
pub const ENV_OPTIONS: &str = "HA_PBX_OPTIONS";
pub const ENV_SUPERVISOR_URL: &str = "HA_PBX_SUPERVISOR_URL";
pub const ENV_INGRESS_ALLOW: &str = "HA_PBX_INGRESS_ALLOW";
pub const ENV_BIND: &str = "HA_PBX_ADDON_BIND";
/// A Unix socket that answers `GET /health` for the image's Docker `HEALTHCHECK`
/// (the ingress port is the Supervisor's choice and only its proxy gets in there).
/// The Dockerfile sets it; unset, there is no socket.
pub const ENV_HEALTH_SOCKET: &str = "HA_PBX_HEALTH_SOCKET";

pub const DEFAULT_OPTIONS: &str = "/data/options.json";
/// HTTP port when the Supervisor cannot tell the ingress port.
pub const FALLBACK_INGRESS_PORT: u16 = 8099;

/// Should this process run as the add-on?
pub fn requested(addon_flag: bool, config_given: bool) -> bool {
    addon_flag || (!config_given && std::env::var(ENV_TOKEN).is_ok_and(|t| !t.is_empty()))
}

/// What the container (or a test) provides around options.json.
#[derive(Debug, Clone)]
pub struct AddonEnv {
    pub options_path: PathBuf,
    pub supervisor_url: String,
    pub token: Option<String>,
    pub ingress_allow: Vec<IpAddr>,
    pub bind: IpAddr,
    pub health_socket: Option<PathBuf>,
}

impl AddonEnv {
    pub fn from_env() -> Result<AddonEnv> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let ingress_allow = match var(ENV_INGRESS_ALLOW) {
            Some(v) => IngressGuard::parse_list(&v).context(ENV_INGRESS_ALLOW)?,
            None => vec![ingress::SUPERVISOR_INGRESS],
        };
        let bind = match var(ENV_BIND) {
            Some(v) => v.trim().parse().map_err(|_| anyhow::anyhow!("{ENV_BIND}: `{v}` is not an IP address"))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        Ok(AddonEnv {
            options_path: PathBuf::from(var(ENV_OPTIONS).unwrap_or_else(|| DEFAULT_OPTIONS.into())),
            supervisor_url: var(ENV_SUPERVISOR_URL).unwrap_or_else(|| supervisor::DEFAULT_URL.into()),
            token: var(ENV_TOKEN),
            ingress_allow,
            bind,
            health_socket: var(ENV_HEALTH_SOCKET).map(PathBuf::from),
        })
    }

    /// The folder of options.json (`/data`), absolute.
    pub fn data_dir(&self) -> PathBuf {
        let dir = self.options_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// Read and check options.json.
pub fn read_options(path: &Path) -> Result<(AddonOptions, Vec<String>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    options::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// The run-ready configuration, and what the add-on adds to the run.
pub struct Prepared {
    pub config: Config,
    pub runtime: AddonRuntime,
}

/// The add-on's part of a run, started by `app::run_with` (as its
/// [`crate::app::RunExtras`]) once the SIP core is up.
pub struct AddonRuntime {
    pub guard: Arc<IngressGuard>,
    /// `/api/hassio_ingress/<token>` when the Supervisor told it.
    pub ingress_entry: Option<String>,
    pub supervisor: Option<Supervisor>,
    pub ha_user_extensions: bool,
    pub ha_user_extension_start: u32,
    /// Home Assistant's API through the Supervisor (`homeassistant_api: true`),
    /// for the AI agent.
    pub ha_api: Option<crate::config::HomeAssistantApi>,
    /// `HA_PBX_HEALTH_SOCKET`: where `/health` is also served, to the container alone.
    pub health_socket: Option<PathBuf>,
}

/// The add-on's HTTP side: guard, panel, HA users' directory.
pub struct AddonHttp {
    guard: Arc<IngressGuard>,
    users: Arc<HaUserDirectory>,
    panel: panel::PanelState,
    roles: ingress_roles::IngressRoles,
    core: crate::sip::core::SipCoreRef,
}

impl AddonRuntime {
    /// A user's extension, once made, reaches Home Assistant at once: the
    /// core announces `DirectoryChanged` on the bus and the MQTT bridge
    /// resynchronises on it.
    pub async fn start(self, core: crate::sip::core::SipCoreRef) -> Result<AddonHttp> {
        let users = HaUserDirectory::start(core.clone(), self.supervisor.clone(), self.ha_user_extensions, self.ha_user_extension_start)
            .await
            .context("Home Assistant users' extensions")?;
        let admins = Arc::new(ha_admins::HaAdmins::new(self.supervisor.clone()));
        match (self.supervisor, &self.ingress_entry) {
            (Some(sup), Some(entry)) => {
                ingress_entry::spawn(sup, entry.clone(), ingress_entry::CHECK_EVERY);
            }
            (Some(_), None) => tracing::warn!("no ingress entry from the Supervisor: {} not set; the SIP Core card needs custom_wss_url", ingress_entry::ENTITY),
            (None, _) => {}
        }
        let sip_server = core.sip_server();
        let panel = panel::PanelState { users: users.clone(), admins: admins.clone(), ingress_entry: self.ingress_entry, sip_server };
        let roles = ingress_roles::IngressRoles { users: users.clone(), admins };
        Ok(AddonHttp { guard: self.guard, users, panel, roles, core })
    }
}

#[async_trait::async_trait]
impl crate::app::RunExtras for AddonRuntime {
    fn ha_api(&self) -> Option<crate::config::HomeAssistantApi> {
        self.ha_api.clone()
    }
    fn health_socket(&self) -> Option<PathBuf> {
        self.health_socket.clone()
    }
    async fn start(self: Box<Self>, core: crate::sip::core::SipCoreRef) -> Result<crate::http::WrapRoutes> {
        let http = AddonRuntime::start(*self, core).await?;
        Ok(Box::new(move |app| http.wrap(app)))
    }
}

impl AddonHttp {
    /// The HTTP router as add-on mode serves it: the panel (`web/`) at `/`
    /// with each ingress user's role, the SIP Core page at `/sip-core`, the
    /// HA users' directory as an `Extension` for handlers such as `/ws`, and
    /// the ingress guard in front of everything.
    pub fn wrap(self, app: axum::Router) -> axum::Router {
        let users: Arc<dyn crate::http::BrowserUsers> = self.users;
        let app = crate::http::panel::layer(app.merge(panel::routes(self.panel)), self.core, crate::http::panel::Panel::ingress())
            .layer(axum::middleware::from_fn_with_state(self.roles, ingress_roles::vouch))
            .layer(axum::Extension(users));
        self.guard.layer(app)
    }

    pub fn guard(&self) -> &Arc<IngressGuard> {
        &self.guard
    }
}

/// Ask the Supervisor what the options leave open, and build the config.
pub async fn prepare(opts: &AddonOptions, env: &AddonEnv) -> Result<Prepared> {
    let sup = match &env.token {
        Some(token) => Some(Supervisor::new(&env.supervisor_url, token)?),
        None => {
            tracing::warn!("{ENV_TOKEN} is not set: the Supervisor is not asked (no MQTT broker from Home Assistant, HTTP on port {FALLBACK_INGRESS_PORT})");
            None
        }
    };

    let (info, mqtt, network) = match &sup {
        None => (None, None, None),
        Some(s) => {
            let want_mqtt = opts.mqtt.is_none();
            let want_net = opts.external_address.is_none();
            let (i, m, n) = tokio::join!(s.self_info(), async {
                if want_mqtt { Some(s.mqtt().await) } else { None }
            }, async {
                if want_net { Some(s.primary_ipv4().await) } else { None }
            });
            (Some(i), m, n)
        }
    };

    let (http_port, ingress_entry) = match info {
        Some(Ok(i)) => match i.ingress_port {
            Some(p) => {
                tracing::info!(port = p, entry = i.ingress_entry.as_deref().unwrap_or("-"), "ingress port from the Supervisor");
                (p, i.ingress_entry)
            }
            None => {
                tracing::warn!("the Supervisor gave no ingress port (ingress off?): HTTP on port {FALLBACK_INGRESS_PORT}");
                (FALLBACK_INGRESS_PORT, i.ingress_entry)
            }
        },
        Some(Err(e)) => {
            tracing::warn!("cannot get the ingress port from the Supervisor (GET /addons/self/info): {e}; HTTP on port {FALLBACK_INGRESS_PORT}");
            (FALLBACK_INGRESS_PORT, None)
        }
        None => (FALLBACK_INGRESS_PORT, None),
    };

    let supervisor_mqtt = match (&opts.mqtt, mqtt) {
        (Some(m), _) => {
            tracing::info!("MQTT broker from the options: {}:{}", m.host, m.port);
            None
        }
        (None, Some(Ok(svc))) if svc.ssl => {
            tracing::warn!("the MQTT broker from the Supervisor ({}:{}) wants TLS, which ha-pbx does not speak yet: MQTT off; set mqtt_host to a plain listener", svc.host, svc.port);
            None
        }
        (None, Some(Ok(svc))) => {
            tracing::info!(
                "MQTT broker from the Supervisor: {}:{} (add-on {}, user {})",
                svc.host,
                svc.port,
                svc.addon.as_deref().unwrap_or("-"),
                svc.username.as_deref().unwrap_or("-")
            );
            Some(mqtt_config(&svc.host, svc.port, svc.username.as_deref(), svc.password.as_deref())?)
        }
        (None, Some(Err(ApiError::Refused { status: 400, message }))) => {
            tracing::warn!("no MQTT broker in Home Assistant (GET /services/mqtt: {message}): MQTT off; install the Mosquitto broker add-on, or set mqtt_host");
            None
        }
        (None, Some(Err(e))) => {
            tracing::warn!("cannot get the MQTT broker from the Supervisor (GET /services/mqtt): {e}; MQTT off");
            None
        }
        (None, None) => None,
    };

    let advertise = match (opts.external_address, network) {
        (Some(ip), _) => {
            tracing::info!("external address {ip} (from the options)");
            ip
        }
        (None, Some(Ok(Some(ip)))) => {
            tracing::info!("external address {ip} (the host's primary interface, from the Supervisor)");
            ip
        }
        (None, other) => {
            let why = match other {
                Some(Ok(None)) => "the Supervisor lists no IPv4 address on the host's interfaces".to_string(),
                Some(Err(e)) => format!("GET /network/info: {e}"),
                _ => "the Supervisor was not asked".to_string(),
            };
            let ip = if env.bind.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { env.bind };
            tracing::warn!("external address unknown ({why}): using {ip}; set external_address to the address your phones reach this host at");
            ip
        }
    };

    let data_dir = env.data_dir();
    let mut config = options::to_config(
        opts,
        &options::Environment { data_dir: &data_dir, bind: env.bind, advertise, http_port, mqtt: supervisor_mqtt },
    )?;
    // Every browser's SIP over WebSocket arrives from the ingress proxy's one
    // address: the flood limit must not lock them all out at once.
    config.security.trusted_sources.extend(env.ingress_allow.iter().map(|ip| ip.to_string()));
    let runtime = AddonRuntime {
        guard: IngressGuard::new(env.ingress_allow.clone()),
        ingress_entry,
        supervisor: sup,
        ha_user_extensions: opts.ha_user_extensions,
        ha_user_extension_start: opts.ha_user_extension_start,
        ha_api: env.token.as_ref().map(|token| crate::config::HomeAssistantApi { url: format!("{}/core", env.supervisor_url.trim_end_matches('/')), token: token.clone() }),
        health_socket: env.health_socket.clone(),
    };
    if let Some(a) = &config.agent {
        // Without the token, build() would point at agent.homeassistant, which the options do not have.
        if runtime.ha_api.is_none() && matches!(a.brain, crate::config::BrainConfig::Assist { .. }) {
            anyhow::bail!("agent.brain.kind: `assist` reaches Home Assistant through the Supervisor, but {ENV_TOKEN} is not set; use kind openai, or run under the Supervisor");
        }
        tracing::info!(extension = %a.extension, handoff_rules = a.handoff.len(), "AI voice agent enabled in the add-on options");
    }
    Ok(Prepared { config, runtime })
}

/// An `MqttConfig` with the config's defaults for what the Supervisor does not say.
fn mqtt_config(host: &str, port: u16, username: Option<&str>, password: Option<&str>) -> Result<MqttConfig> {
    let v = serde_json::json!({"host": host, "port": port, "username": username, "password": password});
    serde_json::from_value(v).context("MQTT settings from the Supervisor")
}

/// The add-on's `main`: exit code 2 for bad options, 1 for a failed run.
pub fn main() -> ExitCode {
    let env = match AddonEnv::from_env() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ha-pbx: add-on environment: {e:#}");
            return ExitCode::from(2);
        }
    };
    let (opts, unknown) = match read_options(&env.options_path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ha-pbx: add-on configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    crate::app::init_tracing(Some(&opts.log_level));
    tracing::info!("ha-pbx {} starting as a Home Assistant add-on (options {})", env!("CARGO_PKG_VERSION"), env.options_path.display());
    if !unknown.is_empty() {
        tracing::warn!("options.json: ignoring unknown option(s) {}", unknown.join(", "));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-pbx: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let prepared = match prepare(&opts, &env).await {
            Ok(p) => p,
            Err(e) => return Err((2u8, e)),
        };
        tracing::info!(
            allowed = %prepared.runtime.guard.allowed().iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","),
            "HTTP (ingress) on {}; other peers are refused",
            prepared.config.http.listen
        );
        crate::app::run_with(prepared.config, Some(Box::new(prepared.runtime))).await.map_err(|e| (1u8, e))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            tracing::error!("fatal: {e:#}");
            eprintln!("ha-pbx: {e:#}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_is_the_options_folder() {
        let env = AddonEnv {
            options_path: PathBuf::from("/data/options.json"),
            supervisor_url: supervisor::DEFAULT_URL.into(),
            token: None,
            ingress_allow: vec![ingress::SUPERVISOR_INGRESS],
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            health_socket: None,
        };
        assert_eq!(env.data_dir(), PathBuf::from("/data"));
        let rel = AddonEnv { options_path: PathBuf::from("options.json"), ..env };
        assert!(rel.data_dir().is_absolute());
    }

    #[test]
    fn mqtt_config_keeps_config_defaults() {
        let m = mqtt_config("core-mosquitto", 1883, Some("addons"), Some("pw")).unwrap();
        assert_eq!((m.host.as_str(), m.port, m.base_topic.as_str(), m.discovery_prefix.as_str()), ("core-mosquitto", 1883, "ha_pbx", "homeassistant"));
    }

    #[tokio::test]
    async fn no_token_still_prepares() {
        let (opts, _) = options::parse(r#"{"sip_udp_port": 5060}"#).unwrap();
        let env = AddonEnv {
            options_path: PathBuf::from("/data/options.json"),
            supervisor_url: supervisor::DEFAULT_URL.into(),
            token: None,
            ingress_allow: vec![ingress::SUPERVISOR_INGRESS],
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            health_socket: None,
        };
        let p = prepare(&opts, &env).await.unwrap();
        assert_eq!(p.config.http.listen.port(), FALLBACK_INGRESS_PORT);
        assert!(p.config.mqtt.is_none());
        assert_eq!(p.config.rtp.address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[tokio::test]
    async fn agent_with_assist_gets_the_supervisors_api_and_needs_its_token() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let agent = r#"{"sip_udp_port": 5060, "agent": {"enabled": true, "extension": "200",
            "stt": {"kind": "wyoming", "host": "core-whisper", "port": 10300},
            "tts": {"kind": "wyoming", "host": "core-piper", "port": 10200}, "brain": {"kind": "assist"}}}"#;
        let (opts, _) = options::parse(agent).unwrap();
        let mut env = AddonEnv {
            options_path: PathBuf::from("/data/options.json"),
            supervisor_url: format!("http://127.0.0.1:{port}"),
            token: Some("t".into()),
            ingress_allow: vec![ingress::SUPERVISOR_INGRESS],
            bind: "127.0.0.1".parse().unwrap(),
            health_socket: None,
        };
        let p = prepare(&opts, &env).await.unwrap();
        assert_eq!(p.config.agent.map(|a| a.extension), Some("200".into()));
        let api = p.runtime.ha_api.unwrap();
        assert_eq!((api.url, api.token), (format!("http://127.0.0.1:{port}/core"), "t".to_string()));
        env.token = None;
        let e = format!("{:#}", prepare(&opts, &env).await.err().unwrap());
        assert!(e.starts_with("agent.brain.kind: `assist`") && e.contains(ENV_TOKEN), "{e}");
    }

    #[tokio::test]
    async fn unreachable_supervisor_is_not_fatal() {
        // a port nothing listens on: connection refused at once
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let (opts, _) = options::parse(r#"{"sip_udp_port": 5060}"#).unwrap();
        let env = AddonEnv {
            options_path: PathBuf::from("/data/options.json"),
            supervisor_url: format!("http://127.0.0.1:{port}"),
            token: Some("t".into()),
            ingress_allow: vec![ingress::SUPERVISOR_INGRESS],
            bind: "127.0.0.1".parse().unwrap(),
            health_socket: None,
        };
        let p = prepare(&opts, &env).await.unwrap();
        assert!(p.config.mqtt.is_none());
        assert_eq!(p.config.http.listen.to_string(), format!("127.0.0.1:{FALLBACK_INGRESS_PORT}"));
        assert_eq!(p.config.rtp.address.to_string(), "127.0.0.1");
    }
}
