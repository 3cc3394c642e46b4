//! The add-on's SIP Core page (`/sip-core` on the ingress port; the panel at
//! `/` links to it): the PBX status, the
//! visiting Home Assistant user's own extension (made on this first visit)
//! and the exact SIP Core configuration, to paste into the SIP Core
//! integration's settings. Deny by default ([`shown`]): a Home Assistant
//! administrator sees every HA user's entry (those HA lists get their
//! extension here too); any other user only their own, and a request naming
//! no user nobody's, so no SIP password reaches another user. Paths in the
//! page are relative, since ingress serves it under `/api/hassio_ingress/<token>/`.
use super::ha_admins::HaAdmins;
use super::ha_users::{HaUser, HaUserExtension};
use super::user_directory::HaUserDirectory;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Where the page is (the panel, `web/`, is at `/` and links to it).
pub const PATH: &str = "/sip-core";

/// Header the Supervisor's ingress proxy sets to the add-on's ingress path.
pub const HEADER_INGRESS_PATH: &str = "x-ingress-path";

#[derive(Clone)]
pub struct PanelState {
    pub users: Arc<HaUserDirectory>,
    /// Who may see every user's password (Home Assistant's administrators).
    pub admins: Arc<HaAdmins>,
    /// `/api/hassio_ingress/<token>` from the Supervisor, when it told.
    pub ingress_entry: Option<String>,
    /// Where SIP devices reach the PBX (shown for softphones).
    pub sip_server: String,
}

pub fn routes(state: PanelState) -> Router {
    Router::new().route(PATH, get(panel)).with_state(state)
}

pub use crate::http::sip_core::{SipCoreConfig, SipCoreUser};

pub fn sip_core_config(ws_url: &str, exts: &[HaUserExtension]) -> SipCoreConfig {
    SipCoreConfig {
        custom_wss_url: ws_url.to_string(),
        users: exts
            .iter()
            .map(|e| SipCoreUser { ha_username: e.name.clone(), display_name: e.name.clone(), extension: e.extension.clone(), password: e.password.clone() })
            .collect(),
    }
}

/// `wss://<ha-host>/api/hassio_ingress/<token>/ws` from what the proxies
/// forwarded: scheme and host of the browser's request (X-Forwarded-Proto,
/// X-Forwarded-Host), the ingress path (X-Ingress-Path, else the entry the
/// Supervisor gave). A part not known is a placeholder the page's script
/// fills from the browser's own address.
pub fn ws_url(headers: &HeaderMap, ingress_entry: Option<&str>) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    // several proxies in a row: the first value is the browser's
    let first = |v: &str| v.split(',').next().unwrap_or(v).trim().to_string();
    let scheme = match text("x-forwarded-proto").map(first).as_deref() {
        Some("http") => "ws",
        _ => "wss", // browsers only allow the microphone over https
    };
    let host = text("x-forwarded-host").map(first).unwrap_or_else(|| HOST_PLACEHOLDER.to_string());
    let path = text(HEADER_INGRESS_PATH).or(ingress_entry).unwrap_or("/api/hassio_ingress/<token>");
    format!("{scheme}://{host}{}/ws", path.trim_end_matches('/'))
}

const HOST_PLACEHOLDER: &str = "<home-assistant-host>";

async fn panel(State(st): State<PanelState>, headers: HeaderMap) -> Response {
    let mine = match st.users.extension_for_headers(&headers).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("panel: cannot map the Home Assistant user: {e:#}");
            let page = format!("<!doctype html><meta charset=utf-8><p>ha-pbx: {}</p>", escape(&format!("{e:#}")));
            return (StatusCode::BAD_REQUEST, Html(page)).into_response();
        }
    };
    // the headers read already above: an error there was answered
    let visitor = HaUser::from_headers(&headers).ok().flatten();
    let admin = match &visitor {
        Some(user) => st.admins.is_admin(&user.id).await,
        None => false,
    };
    // every user HA lists gets an extension (so an administrator's list is
    // complete before each has visited), whoever looks: listed on a user's
    // first visit and every few minutes, not on every visit
    st.users.add_known_users(visitor.as_ref().map(|u| u.id.as_str())).await;
    let all = if admin {
        match st.users.all().await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("panel: cannot read the Home Assistant users' extensions: {e:#}");
                return (StatusCode::INTERNAL_SERVER_ERROR, "500: cannot read the extensions; see the add-on log\n").into_response();
            }
        }
    } else {
        vec![]
    };
    let url = ws_url(&headers, st.ingress_entry.as_deref());
    let users = shown(admin, mine.as_ref(), all);
    let yaml = serde_norway::to_string(&sip_core_config(&url, &users)).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    let page = render(&st, mine.as_ref(), admin, &yaml);
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// Whose entries a visitor sees: an administrator every user's (`all`);
/// anyone else their own alone (none without an extension).
pub fn shown(admin: bool, mine: Option<&HaUserExtension>, all: Vec<HaUserExtension>) -> Vec<HaUserExtension> {
    if admin {
        all
    } else {
        mine.cloned().into_iter().collect()
    }
}

fn render(st: &PanelState, mine: Option<&HaUserExtension>, admin: bool, yaml: &str) -> String {
    let you = match (mine, st.users.enabled()) {
        (Some(e), _) => format!(
            "<p>Your extension: <b id=\"my-ext\">{}</b>, password <code id=\"my-pw\">{}</code> (SIP server {}). \
             The SIP Core card registers with it in this browser; a softphone can use it too.</p>",
            escape(&e.extension),
            escape(&e.password),
            escape(&st.sip_server)
        ),
        (None, true) => "<p class=\"muted\">Open this panel from Home Assistant's sidebar to get your own extension.</p>".to_string(),
        (None, false) => "<p class=\"muted\">Automatic extensions for Home Assistant users are off (option <code>ha_user_extensions</code>).</p>".to_string(),
    };
    let whose = if admin {
        "It lists every Home Assistant user that has opened this panel (or that Home Assistant lists); each browser uses the entry whose <code>ha_username</code> is its user's name."
    } else {
        "It lists <b id=\"only-mine\">your own entry only</b>: a Home Assistant administrator sees every user's."
    };
    PANEL_HTML
        .replace("{version}", env!("CARGO_PKG_VERSION"))
        .replace("{whose}", whose)
        .replace("{you}", &you)
        .replace("{placeholder}", HOST_PLACEHOLDER)
        .replace("{yaml}", &escape(yaml))
}

/// Text into HTML (names come from Home Assistant users).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PANEL_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ha-pbx</title>
<style>
 body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:24px;background:#fafafa;color:#212121}
 .card{max-width:760px;margin:0 auto 16px;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.15);padding:20px 24px}
 h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:0 0 8px} .muted{color:#727272} table{border-collapse:collapse;margin-top:12px}
 td{padding:4px 16px 4px 0} td.v{font-weight:600} pre{background:#f0f0f0;padding:12px;border-radius:8px;overflow:auto}
 @media (prefers-color-scheme:dark){body{background:#111;color:#e1e1e1}.card{background:#1c1c1c}pre{background:#2a2a2a}}
</style></head><body><div class="card">
<h1>ha-pbx {version}</h1><div class="muted">SIP PBX for Home Assistant</div>
<table id="t"><tr><td>Status</td><td class="v" id="status">…</td></tr></table>
{you}
</div><div class="card">
<h2>SIP Core card</h2>
<p>In <i>Settings → Devices &amp; services → SIP Core → Configure</i>, replace the <code>users</code> list (and
<code>custom_wss_url</code>, if there is one) with this, keeping SIP Core's other settings. {whose}</p>
<pre id="sipcore">{yaml}</pre>
<button id="copy">Copy</button> <span class="muted" id="copied"></span>
</div><script>
const pre=document.getElementById("sipcore");
// the browser knows the address it reached Home Assistant at
const origin=(location.protocol==="http:"?"ws://":"wss://")+location.host;
pre.textContent=pre.textContent.replace(/wss?:\/\/{placeholder}/,origin);
document.getElementById("copy").onclick=()=>navigator.clipboard.writeText(pre.textContent)
 .then(()=>{document.getElementById("copied").textContent="copied";});
fetch("health").then(r=>r.json()).then(h=>{
 const rows=[["Registered extensions",h.registered_extensions],["Registrations",h.bindings],["Active calls",h.active_calls],["Media relays",h.media_relays]];
 document.getElementById("status").textContent=h.status;
 const t=document.getElementById("t");
 for(const [k,v] of rows){const tr=t.insertRow();tr.insertCell().textContent=k;const c=tr.insertCell();c.className="v";c.textContent=v;}
}).catch(e=>{document.getElementById("status").textContent="unreachable ("+e+")";});
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ext(user: &str, name: &str, n: &str, pw: &str) -> HaUserExtension {
        HaUserExtension { user_id: user.into(), username: None, extension: n.into(), password: pw.into(), name: name.into() }
    }

    #[test]
    fn ws_url_from_forwarded_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(ws_url(&h, Some("/api/hassio_ingress/abc")), "wss://<home-assistant-host>/api/hassio_ingress/abc/ws");
        assert_eq!(ws_url(&h, None), "wss://<home-assistant-host>/api/hassio_ingress/<token>/ws");
        h.insert("x-forwarded-host", HeaderValue::from_static("ha.example.org, 10.0.0.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(HEADER_INGRESS_PATH, HeaderValue::from_static("/api/hassio_ingress/XYZ/"));
        assert_eq!(ws_url(&h, Some("/api/hassio_ingress/abc")), "wss://ha.example.org/api/hassio_ingress/XYZ/ws");
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        h.insert("x-forwarded-host", HeaderValue::from_static("192.168.1.10:8123"));
        assert_eq!(ws_url(&h, None), "ws://192.168.1.10:8123/api/hassio_ingress/XYZ/ws");
    }

    #[test]
    fn sip_core_yaml_has_the_cards_keys_and_string_extensions() {
        let cfg = sip_core_config("wss://h/api/hassio_ingress/t/ws", &[ext("u1", "Alice", "100", "pw1"), ext("u2", "Bob: the 2nd", "101", "pw2")]);
        let yaml = serde_norway::to_string(&cfg).unwrap();
        // read back as the card's integration would
        let v: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"custom_wss_url": "wss://h/api/hassio_ingress/t/ws", "users": [
                {"ha_username": "Alice", "display_name": "Alice", "extension": "100", "password": "pw1"},
                {"ha_username": "Bob: the 2nd", "display_name": "Bob: the 2nd", "extension": "101", "password": "pw2"}]})
        );
    }

    #[test]
    fn only_an_administrator_sees_every_users_entry() {
        let all = vec![ext("u1", "Alice", "100", "pw1"), ext("u2", "Bob", "101", "pw2")];
        let bob = ext("u2", "Bob", "101", "pw2");
        let numbers = |v: Vec<HaUserExtension>| v.into_iter().map(|e| e.extension).collect::<Vec<_>>();
        assert_eq!(numbers(shown(true, Some(&bob), all.clone())), ["100", "101"]);
        assert_eq!(numbers(shown(true, None, all.clone())), ["100", "101"]);
        assert_eq!(numbers(shown(false, Some(&bob), all.clone())), ["101"]);
        assert!(shown(false, None, all).is_empty(), "no user named: nobody's password");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(escape(r#"<b a="x">&'"#), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
    }
}
