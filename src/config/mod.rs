//! Configuration: YAML (serde_norway) with an embedded default.
//!
//! Every struct denies unknown keys so that a typo stops start-up with a
//! message naming the key, instead of being silently ignored.
pub mod agent;
mod cidr;
mod feature_codes;
mod forward;
mod groups;
mod host_address;
mod listen;
mod park;
pub mod trunks;
mod trunk_checks;
pub mod validate;

pub use agent::{parse_window, AgentConfig, BrainConfig, HandoffRule, HomeAssistantApi, SttConfig, TtsConfig};
pub use cidr::Cidr;
pub use feature_codes::{Feature, FeatureCodes};
pub use forward::{ForwardConfig, NO_ANSWER_SECS};
pub use park::{ParkConfig, MAX_PARK_SLOTS};
pub use groups::{GroupConfig, GroupStrategy, AGENT_MEMBER};
pub use listen::{phone_listener, ListenAddr, Transport};
pub use trunks::{InboundHost, OutboundRoute, SrtpMode, TrunkConfig};

use anyhow::Context;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The configuration used when `ha-pbx` runs with no `--config`.
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub sip: SipConfig,
    #[serde(default)]
    pub rtp: RtpConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub extensions: Vec<ExtensionConfig>,
    /// Ring groups: numbers that ring several extensions.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Numbers dialled for pickup, directed pickup, intercom, messages and park.
    #[serde(default)]
    pub feature_codes: FeatureCodes,
    /// Call park: slots and ring-back timeout; off when absent.
    #[serde(default)]
    pub park: Option<ParkConfig>,
    /// MQTT bridge to Home Assistant; off when absent.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// The built-in AI voice agent; off when absent.
    #[serde(default)]
    pub agent: Option<AgentConfig>,
    /// SIP accounts at phone providers (the phone network).
    #[serde(default)]
    pub trunks: Vec<TrunkConfig>,
    /// Which extensions may call which numbers out, over which trunk.
    #[serde(default)]
    pub outbound_routes: Vec<OutboundRoute>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    #[serde(default = "default_base_topic")]
    pub base_topic: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// `udp://IP:PORT`, `tcp://IP:PORT`, `tls://IP:PORT`.
    #[serde(default = "default_listen")]
    pub listen: Vec<ListenAddr>,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Digest realm; also the domain in From/To of requests we originate.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Address written into Via/Contact/Record-Route when the listen address is
    /// a wildcard (0.0.0.0); defaults to `rtp.address`.
    #[serde(default)]
    pub external_address: Option<IpAddr>,
    #[serde(default)]
    pub registration: RegistrationConfig,
    /// SUBSCRIBE (BLF `dialog`, MWI `message-summary`): lifetimes and caps.
    #[serde(default)]
    pub subscriptions: SubscriptionsConfig,
    /// Digest algorithms offered in challenges, in order. Credentials in either
    /// are always accepted; SHA-256 is not offered by default because some
    /// clients (baresip 1.0, older doorbells) give up on a challenge list
    /// that holds an algorithm they do not know.
    #[serde(default = "default_digest_algorithms")]
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// How long a digest nonce stays valid before the device gets `stale=true`.
    #[serde(default = "default_nonce_ttl")]
    pub nonce_ttl_secs: u64,
    /// Seconds a callee may ring before the caller gets 480.
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DigestAlgorithm {
    #[serde(rename = "MD5", alias = "md5")]
    Md5,
    #[serde(rename = "SHA-256", alias = "sha-256", alias = "SHA256", alias = "sha256")]
    Sha256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    #[serde(default = "default_min_expires")]
    pub min_expires: u32,
    #[serde(default = "default_max_expires")]
    pub max_expires: u32,
    #[serde(default = "default_default_expires")]
    pub default_expires: u32,
    /// Contacts kept per extension; the oldest binding is replaced past it.
    #[serde(default = "default_max_contacts")]
    pub max_contacts: usize,
}

/// `sip.subscriptions`: how long a SUBSCRIBE lasts and how many are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// Shorter asked lifetimes get 423 Interval Too Brief.
    #[serde(default = "default_sub_min_expires")]
    pub min_expires: u32,
    /// Longer asked lifetimes are cut to this.
    #[serde(default = "default_sub_max_expires")]
    pub max_expires: u32,
    /// Given when the SUBSCRIBE asks for none.
    #[serde(default = "default_sub_default_expires")]
    pub default_expires: u32,
    /// Subscriptions one extension may hold (more: 403).
    #[serde(default = "default_sub_per_extension")]
    pub max_per_extension: usize,
    /// Subscriptions the PBX holds at most (more: 503).
    #[serde(default = "default_sub_total")]
    pub max_total: usize,
}

fn default_sub_min_expires() -> u32 {
    60
}
fn default_sub_max_expires() -> u32 {
    3600
}
fn default_sub_default_expires() -> u32 {
    600
}
fn default_sub_per_extension() -> usize {
    64
}
fn default_sub_total() -> usize {
    2000
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// `FIRST-LAST`, inclusive; each call leg takes an even/odd pair.
    #[serde(default = "default_rtp_ports")]
    pub ports: String,
    /// Address written into SDP (and bound, unless `bind` is given): `address`
    /// from the file, else (see [`resolve_rtp_address`]) the host's primary
    /// address when SIP listens on all addresses, else 127.0.0.1.
    #[serde(skip, default = "default_rtp_address")]
    pub address: IpAddr,
    /// `address` as the file gives it; `None` when absent.
    #[serde(rename = "address", default)]
    pub address_given: Option<IpAddr>,
    /// Address the RTP sockets bind to; defaults to `address`.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// A call whose media stops for this long is ended with BYE on both legs.
    #[serde(default = "default_media_timeout")]
    pub media_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// Bearer token for the call-control API under /api; the API is off without it.
    #[serde(default)]
    pub api_token: Option<String>,
    /// A second listener serving the same routes over TLS (WSS for browsers
    /// on HTTPS pages), with the SIP TLS pair (`sip.tls`, or the self-signed one).
    #[serde(default)]
    pub wss_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Failed digest attempts from one source before it is ignored.
    #[serde(default = "default_ban_failures")]
    pub ban_after_failures: u32,
    /// Window in which those failures are counted.
    #[serde(default = "default_ban_window")]
    pub ban_window_secs: u64,
    /// How long a banned source is ignored.
    #[serde(default = "default_ban_secs")]
    pub ban_secs: u64,
    /// Largest SIP message accepted.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// A SIP TCP/TLS connection or WebSocket that carried no SIP message for
    /// this long is closed, unless a registration uses it (that one stays for
    /// the registration's lifetime).
    #[serde(default = "default_idle_connection")]
    pub idle_connection_secs: u64,
    /// SIP TCP and TLS connections open at once; one more is closed at once.
    #[serde(default = "default_max_sip_connections")]
    pub max_sip_connections: usize,
    /// The same, from one IP address.
    #[serde(default = "default_max_sip_connections_per_ip")]
    pub max_sip_connections_per_ip: usize,
    /// SIP WebSockets (`/ws`, browsers) open at once; one more gets HTTP 503.
    #[serde(default = "default_max_websockets")]
    pub max_websockets: usize,
    /// The same, from one IP address (through ingress every browser comes
    /// from the Supervisor's address, so keep it generous).
    #[serde(default = "default_max_websockets_per_ip")]
    pub max_websockets_per_ip: usize,
    /// An HTTP client must send a request's whole header within this time.
    #[serde(default = "default_http_header_timeout")]
    pub http_header_timeout_secs: u64,
    /// Media streams (m= lines with a port) one call may relay; an offer with
    /// more gets 488.
    #[serde(default = "default_max_media_per_call")]
    pub max_media_per_call: usize,
    /// Calls one extension may place at once (each holds relay ports); one
    /// more gets 503.
    #[serde(default = "default_max_calls_per_extension")]
    pub max_calls_per_extension: usize,
    /// Calls the PBX carries at once, ringing or answered, from phones and
    /// trunks together; one more gets 503 (so an overload refuses new calls
    /// instead of piling them up).
    #[serde(default = "default_max_calls")]
    pub max_calls: usize,
    /// Sustained SIP requests per second one source may send (0: no limit).
    #[serde(default = "default_flood_rate")]
    pub flood_rate: f64,
    /// Requests a source may send at once above `flood_rate`.
    #[serde(default = "default_flood_burst")]
    pub flood_burst: u32,
    /// How long a source over the limit is ignored.
    #[serde(default = "default_flood_ban_secs")]
    pub flood_ban_secs: u64,
    /// Addresses or blocks (`192.168.1.0/24`) never rate limited.
    #[serde(default = "default_trusted_sources")]
    pub trusted_sources: Vec<String>,
    /// Requests whose User-Agent contains one of these (any case) are dropped.
    #[serde(default = "default_blocked_user_agents")]
    pub blocked_user_agents: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExtensionConfig {
    pub extension: String,
    pub password: String,
    #[serde(default)]
    pub name: Option<String>,
    /// How key presses reach this extension's device.
    #[serde(default)]
    pub dtmf: DtmfMode,
    /// Where its calls go instead: always, when busy, when not answered.
    #[serde(default)]
    pub forward: ForwardConfig,
    /// Do not disturb: calls get 486 Busy Here (or the `busy` forward).
    #[serde(default)]
    pub dnd: bool,
    /// `doorbell`: its Home Assistant event entity is a doorbell that
    /// fires `ring` when it calls.
    #[serde(default)]
    pub kind: ExtensionKind,
    /// DTMF digits that open the door (e.g. `1#`): an "Open door" button in
    /// Home Assistant sends them into the doorbell's live call.
    #[serde(default)]
    pub door_open: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExtensionKind {
    #[default]
    Phone,
    Doorbell,
}

/// DTMF toward a device: RFC 4733 events in its RTP, or SIP INFO (door
/// stations that open on a digit, old phones that ignore telephone-events).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMode {
    #[default]
    Rfc4733,
    Info,
}

impl DtmfMode {
    /// The name used in the config file and add-on options.
    pub fn as_str(self) -> &'static str {
        match self {
            DtmfMode::Rfc4733 => "rfc4733",
            DtmfMode::Info => "info",
        }
    }
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_discovery_prefix() -> String {
    "homeassistant".into()
}
fn default_base_topic() -> String {
    "ha_pbx".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_listen() -> Vec<ListenAddr> {
    vec![
        "udp://0.0.0.0:5060".parse().expect("static"),
        "tcp://0.0.0.0:5060".parse().expect("static"),
    ]
}
fn default_realm() -> String {
    "ha-pbx".into()
}
fn default_digest_algorithms() -> Vec<DigestAlgorithm> {
    vec![DigestAlgorithm::Md5]
}
fn default_nonce_ttl() -> u64 {
    300
}
fn default_ring_timeout() -> u64 {
    60
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_default_expires() -> u32 {
    3600
}
fn default_max_contacts() -> usize {
    10
}
fn default_rtp_ports() -> String {
    "20000-20999".into()
}
fn default_rtp_address() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_media_timeout() -> u64 {
    60
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8088))
}
fn default_ban_failures() -> u32 {
    10
}
fn default_ban_window() -> u64 {
    60
}
fn default_ban_secs() -> u64 {
    300
}
fn default_max_message() -> usize {
    16 * 1024
}
fn default_idle_connection() -> u64 {
    300
}
fn default_max_sip_connections() -> usize {
    1000
}
fn default_max_sip_connections_per_ip() -> usize {
    50
}
fn default_max_websockets() -> usize {
    200
}
fn default_max_websockets_per_ip() -> usize {
    50
}
fn default_http_header_timeout() -> u64 {
    10
}
fn default_max_media_per_call() -> usize {
    4
}
fn default_max_calls_per_extension() -> usize {
    8
}
fn default_max_calls() -> usize {
    200
}
fn default_flood_rate() -> f64 {
    50.0
}
fn default_flood_burst() -> u32 {
    200
}
fn default_flood_ban_secs() -> u64 {
    60
}
fn default_trusted_sources() -> Vec<String> {
    vec!["127.0.0.0/8".into(), "::1".into()]
}
fn default_blocked_user_agents() -> Vec<String> {
    ["friendly-scanner", "sipvicious", "sipcli", "pplsip"].map(String::from).to_vec()
}

impl Default for SipConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}
impl Default for RegistrationConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}
impl Default for RtpConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}
impl Default for SecurityConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("defaults")
    }
}

impl RtpConfig {
    /// The inclusive port range; `validate` has checked it parses.
    pub fn port_range(&self) -> anyhow::Result<(u16, u16)> {
        validate::parse_port_range(&self.ports)
    }
    pub fn bind_address(&self) -> IpAddr {
        self.bind.unwrap_or(self.address)
    }
}

impl SipConfig {
    /// Address the PBX names itself by in Via, Contact and Record-Route.
    pub fn advertised_ip(&self, rtp: &RtpConfig) -> IpAddr {
        self.external_address.unwrap_or(rtp.address)
    }
}

/// Parse YAML text into a validated config.
pub fn parse(text: &str) -> anyhow::Result<Config> {
    let mut config: Config = serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.rtp.address = resolve_rtp_address(&config, host_address::primary_address);
    validate::validate(&config)?;
    Ok(config)
}

/// The media address: `rtp.address` when given; when SIP listens on a
/// wildcard (0.0.0.0, ::) the host's primary address (`primary`: the route's
/// source address, found without sending anything), so a phone elsewhere on
/// the LAN hears the calls; else, or when there is no route, 127.0.0.1.
pub fn resolve_rtp_address(c: &Config, primary: impl FnOnce() -> Option<IpAddr>) -> IpAddr {
    if let Some(a) = c.rtp.address_given {
        return a;
    }
    let wildcard = c.sip.listen.iter().any(|l| l.addr.ip().is_unspecified());
    wildcard.then(primary).flatten().unwrap_or_else(default_rtp_address)
}

/// Load the file at `path`, or the embedded default when `None`.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        None => parse(DEFAULT_YAML).context("embedded default config"),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let mut config = parse(&text).with_context(|| format!("in {}", p.display()))?;
            // Relative paths in the file are relative to the file, not the cwd.
            let base = p.parent().unwrap_or(Path::new("."));
            config.resolve_paths(base);
            Ok(config)
        }
    }
}

impl Config {
    /// The configured extension `number`.
    pub fn extension(&self, number: &str) -> Option<&ExtensionConfig> {
        self.extensions.iter().find(|e| e.extension == number)
    }

    /// The ring group dialled as `number`, if it is one.
    pub fn group(&self, number: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.extension == number)
    }

    /// The trunk named `name`.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(tls) = &mut self.sip.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
    }
}

#[cfg(test)]
mod tests;
