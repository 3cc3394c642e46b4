//! Where Home Assistant's APIs are. Standalone, `url` is HA itself
//! (`http://host:8123`): REST under `/api/`, WebSocket at `/api/websocket`.
//! In add-on mode it is the Supervisor's proxy `http://supervisor/core`:
//! REST under `/core/api/`, WebSocket at `/core/websocket` (no `/api`).
use crate::agent::backends::http::check_base_url;

/// The Supervisor's proxy to Home Assistant, as an add-on sees it.
pub const SUPERVISOR_CORE: &str = "http://supervisor/core";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaUrls {
    /// Base for REST paths such as `/api/states/x` (no trailing slash).
    pub base: String,
    /// `ws(s)://.../websocket`.
    pub websocket: String,
}

/// The error says what is wrong; the caller names the config field.
pub fn ha_urls(url: &str) -> Result<HaUrls, String> {
    let base = check_base_url(url)?;
    let (scheme, rest) = base.split_once("://").expect("checked: http or https");
    let ws_scheme = if scheme == "https" { "wss" } else { "ws" };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let ws_path = if authority == "supervisor" && path == "core" { "/core/websocket".to_string() } else if path.is_empty() { "/api/websocket".to_string() } else { format!("/{path}/api/websocket") };
    Ok(HaUrls { websocket: format!("{ws_scheme}://{authority}{ws_path}"), base })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_addon_and_tls() {
        let u = ha_urls("http://192.168.1.5:8123/").unwrap();
        assert_eq!(u.base, "http://192.168.1.5:8123");
        assert_eq!(u.websocket, "ws://192.168.1.5:8123/api/websocket");
        let u = ha_urls(SUPERVISOR_CORE).unwrap();
        assert_eq!(u.base, "http://supervisor/core");
        assert_eq!(u.websocket, "ws://supervisor/core/websocket");
        let u = ha_urls("https://ha.example.org").unwrap();
        assert_eq!(u.websocket, "wss://ha.example.org/api/websocket");
        // HA behind a reverse proxy under a path prefix
        let u = ha_urls("https://example.org/ha/").unwrap();
        assert_eq!((u.base.as_str(), u.websocket.as_str()), ("https://example.org/ha", "wss://example.org/ha/api/websocket"));
        assert!(ha_urls("ws://h:8123").unwrap_err().contains("http://"));
    }
}
