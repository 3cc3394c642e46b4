//! Entry points of the fuzz targets in `fuzz/` (one function per target).
//!
//! Compiled only with the `fuzzing` feature, which nothing but `fuzz/`
//! enables: the normal build and the add-on never contain it. Each function
//! takes the fuzzer's bytes and drives the real code, sans-IO; it must never
//! panic, whatever the bytes (a panic is a finding).
use crate::media::relay::keys::KeyInjector;
use crate::media::relay::splice::Splice;
use crate::media::relay::switch::{Channel, Switch, Verdict};
use crate::media::relay::Leg;
use crate::media::dtmf::DtmfDetector;
use crate::media::sdp::{OriginKeeper, Sdp};
use crate::sip::auth::digest::{self, Attempt};
use crate::sip::auth::nonces::{NonceLimits, NonceTable};
use crate::sip::registrar::bindings::{BindingTable, Limits};
use rsipstack::sip::{SipMessage, Transport};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// SIP message parsing: rsipstack's parser, then what we read of every
/// message (typed headers, serialisation and a re-parse of it).
pub fn sip_message(data: &[u8]) {
    let Ok(msg) = SipMessage::try_from(data) else { return };
    let text = msg.to_string();
    let _ = SipMessage::try_from(text.as_bytes());
    let _ = crate::sip::wellformed::check(&msg, 65_535);
    if let SipMessage::Request(req) = &msg {
        let _ = crate::sip::b2bua::dtmf::info_digit(req);
    }
}

/// The router's handling of a message, as far as it goes without sockets:
/// the datagram checks below rsipstack (stateless replies, short bodies,
/// overload shedding's reading and its 503),
/// the guard, the Via fix-up of a received message, the routing decision,
/// and for a REGISTER the registrar's parsing and binding table.
pub fn sip_router(data: &[u8]) {
    let _ = crate::sip::stateless::datagram_refusal(data, 8192);
    let _ = crate::sip::stateless::reply_to_raw(data, 513, "Message Too Large", "fuzz");
    // overload shedding reads every datagram's first bytes, unparsed
    let _ = crate::sip::shed::kind(data);
    let _ = crate::sip::shed::refusal(data, "fuzz");
    let Ok(msg) = SipMessage::try_from(data) else { return };
    let source: SocketAddr = ([192, 0, 2, 7], 5062).into();
    let Ok(msg) = rsipstack::transport::SipConnection::update_msg_received(msg, source, Transport::Udp) else { return };
    if let crate::sip::wellformed::Check::Reply(status) = crate::sip::wellformed::check(&msg, 8192) {
        if let SipMessage::Request(req) = &msg {
            let _ = crate::sip::stateless::reply_to(req, status, "fuzz").to_string();
        }
        return;
    }
    let SipMessage::Request(req) = msg else { return };
    front(&req);
    match crate::sip::router::route(&req) {
        crate::sip::router::Route::Register => {
            let Ok(parsed) = crate::sip::registrar::handler::parse_register(&req, source, Some(Transport::Udp)) else { return };
            let limits = Limits { min_expires: 60, max_expires: 3600, default_expires: 600, max_contacts: 6 };
            let mut table = BindingTable::default();
            let now = 1_700_000_000;
            if table.register("101", &parsed, &limits, now).is_ok() {
                for b in table.lookup("101", now) {
                    let _ = b.source_ip();
                    let _ = b.delivery_address();
                }
            }
            let _ = table.sweep(now + 4000);
        }
        crate::sip::router::Route::Reply(status) => {
            let _ = crate::sip::stateless::reply_to(&req, status, "fuzz").to_string();
        }
        _ => {
            let _ = crate::sip::b2bua::dtmf::info_digit(&req);
        }
    }
}

/// The stateless front's decision, the transaction key of the request and
/// of every Via value, and the response cache fed with them.
fn front(req: &rsipstack::sip::Request) {
    use crate::sip::front::{cache::ResponseCache, decide};
    let _ = decide::decide(req);
    for h in req.headers.iter() {
        if let rsipstack::sip::Header::Via(v) = h {
            let _ = crate::sip::tx_key::via_branch_and_sent_by(v.value());
        }
    }
    let Some(key) = crate::sip::tx_key::TxKey::of(req) else { return };
    let t0 = std::time::Instant::now();
    let to: SocketAddr = ([192, 0, 2, 7], 5062).into();
    let mut cache = ResponseCache::new(4096, std::time::Duration::from_secs(32));
    for i in 0..3u64 {
        cache.insert(key.clone(), vec![0; 1000 * i as usize], to, t0 + std::time::Duration::from_secs(20 * i));
        assert!(cache.bytes() <= 4096);
    }
    let _ = cache.get(&key, t0 + std::time::Duration::from_secs(50));
    cache.expire(t0 + std::time::Duration::from_secs(100));
    assert!(cache.is_empty());
}

/// The WebSocket frame path: a frame's classification and, for a message,
/// the Via fix-up the session applies before the core sees it.
pub fn ws_frame(data: &[u8]) {
    match crate::sip::websocket::classify(data) {
        crate::sip::websocket::Frame::Message(msg) => {
            let remote: SocketAddr = ([198, 51, 100, 4], 50_123).into();
            if let Ok(m) = rsipstack::transport::SipConnection::update_msg_received(*msg, remote, Transport::Wss) {
                let _ = m.to_string();
            }
        }
        crate::sip::websocket::Frame::KeepAlive | crate::sip::websocket::Frame::Garbage(_) => {}
    }
}

/// SDP parsing and rewriting: every accessor, the relay rewrite, the origin
/// keeper, payload filtering, and the WebRTC bridge's reading of an offer;
/// `a=crypto` lines (a usable one formats and parses back, and its key
/// meets the input as hostile SRTP), our own written in.
pub fn sdp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::media::webrtc::is_webrtc(text);
    let _ = crate::media::webrtc::check_browser_sdp(text);
    let Ok(mut sdp) = Sdp::parse(text) else { return };
    let n = sdp.media_count();
    for i in 0..n {
        let _ = sdp.media_port(i);
        let _ = sdp.media_endpoint(i);
        let _ = sdp.is_hold(i);
        if let Some(m) = sdp.media(i) {
            let _ = (m.kind(), m.proto(), m.connection_addr(), m.rtcp(), m.rtcp_mux(), m.direction());
            for pt in m.payload_types() {
                let _ = (m.rtpmap(pt), m.fmtp(pt));
            }
            let _ = m.telephone_event_pt();
            let _ = (m.is_savp(), m.crypto_lines().count());
            if let crate::media::sdp::Offered::Usable(c) = m.offered_crypto() {
                // What we write back reads back the same.
                let again = crate::media::sdp::Crypto::parse(&c.format()).expect("our a=crypto parses");
                assert_eq!(again, c, "a=crypto does not survive formatting");
                // The whole input, as hostile SRTP/SRTCP under that key: refused or passed, never a panic.
                let keys = crate::media::srtp::SrtpKeys { send: c.key.clone(), receive: c.key };
                let mut leg = crate::media::srtp::SrtpLeg::new(keys);
                let _ = (leg.unprotect_rtp(data), leg.unprotect_rtcp(data), leg.protect_rtp(data), leg.protect_rtcp(data));
            }
        }
    }
    let _ = sdp.telephone_event_pt();
    let _ = crate::media::webrtc::offered_audio(&sdp);
    let _ = crate::media::webrtc::offered_video(&sdp);
    refusals(&sdp);
    let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let ports: Vec<Option<u16>> = (0..n).map(|i| (i % 3 != 2).then_some(20_000 + 2 * i as u16)).collect();
    let mut keeper = OriginKeeper::new("ha-pbx", 42);
    keeper.apply(&mut sdp, addr);
    sdp.set_origin("ha-pbx", 42, keeper.version(), addr);
    sdp.rewrite_for_relay(addr, &ports);
    if n > 0 {
        let _ = sdp.retain_payloads(0, |pt| pt < 96 || pt % 2 == 0);
        let ours = crate::media::sdp::Crypto { tag: 1, key: crate::media::srtp::SrtpKey { suite: crate::media::srtp::Suite::AesCm128HmacSha1_80, material: [7; 30] } };
        sdp.set_crypto(n - 1, "RTP/SAVP", &[ours]);
    }
    let out = sdp.to_string();
    // what we send must parse again
    assert!(Sdp::parse(&out).is_ok(), "rewritten SDP does not parse again:\n{out}");
}

/// An offer's streams refused as an answer writes them ([`Sdp::refusals_from`],
/// [`crate::media::sdp::Media::refusal`]): one section for each, in place, and
/// an answer made of them all parses back with every port 0.
fn refusals(offer: &Sdp) {
    let n = offer.media_count();
    let refused = offer.refusals_from(0);
    assert_eq!(refused.len(), n, "not one refusal per offered stream");
    assert_eq!(offer.refusals_from(n / 2), refused[n / 2..], "refusals from the middle are the tail of all of them");
    assert!(offer.refusals_from(n + 1).is_empty());
    let mut answer = String::from("v=0\r\no=ha-pbx 42 1 IN IP4 192.0.2.1\r\ns=ha-pbx\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n");
    for (i, r) in refused.iter().enumerate() {
        let m = offer.media(i).expect("a section per index");
        assert_eq!(&m.refusal(), r);
        assert!(r.starts_with("m=") && r.ends_with("\r\n") && r.matches('\n').count() == 1, "a refusal is one m= line: {r:?}");
        answer.push_str(r);
    }
    if answer.len() > crate::media::sdp::MAX_BYTES {
        return;
    }
    let back = Sdp::parse(&answer).unwrap_or_else(|e| panic!("an answer refusing every stream does not parse ({e}):\n{answer}"));
    assert_eq!(back.media_count(), n, "the answer's sections are not the offer's:\n{answer}");
    for i in 0..n {
        let (theirs, ours) = (offer.media(i).expect("offered"), back.media(i).expect("answered"));
        assert_eq!((ours.port(), ours.kind(), ours.proto()), (0, theirs.kind(), theirs.proto()), "stream {i} not refused in place:\n{answer}");
    }
}

/// Digest header parsing and verification against a real nonce table.
pub fn digest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (header, request_uri) = text.split_once('\n').unwrap_or((text, "sip:127.0.0.1"));
    let _ = digest::uri_matches(request_uri, "sip:101@127.0.0.1:5060");
    let Ok(mut creds) = digest::parse_credentials(header) else { return };
    let ip: IpAddr = Ipv4Addr::new(192, 0, 2, 9).into();
    let mut nonces = NonceTable::new([7; 32], NonceLimits::with_ttl(300));
    let issued = nonces.issue(ip, 1000);
    let attempt = Attempt { method: "REGISTER", request_uri, source: ip, now_secs: 1001 };
    let ha1 = digest::Ha1::from_password(&creds.username, "ha-pbx", "secret");
    let _ = digest::verify(&creds, attempt, "ha-pbx", Some(&ha1), &mut nonces);
    creds.nonce = issued;
    let ha1 = digest::Ha1::from_password(&creds.username, &creds.realm, "secret");
    let _ = digest::verify(&creds, attempt, &creds.realm.clone(), Some(&ha1), &mut nonces);
    let _ = digest::verify(&creds, attempt, "ha-pbx", None, &mut nonces);
}

/// RTP/RTCP through the relay: the latch/timeout switch, DTMF detection, the
/// splice that renumbers a new source, and key injection, in the order the
/// relay task applies them. Input: `[flags, src, len, bytes…]…`.
pub fn relay_rtp(data: &[u8]) {
    let start = Instant::now();
    let mut switch = Switch::new(Duration::from_secs(30), start);
    let a: SocketAddr = ([192, 0, 2, 10], 4000).into();
    let b: SocketAddr = ([192, 0, 2, 20], 6000).into();
    switch.set_peer(Leg::A, a, None, start);
    switch.set_peer(Leg::B, b, Some(([192, 0, 2, 20], 6001).into()), start);
    switch.set_signalling_host(Leg::A, Some(a.ip()));
    let mut dtmf = [DtmfDetector::default(), DtmfDetector::default()];
    dtmf[0].set_payload_type(Some(101));
    dtmf[1].set_payload_type(Some(96));
    let mut splice = [Splice::default(), Splice::default()];
    let mut keys = [KeyInjector::default(), KeyInjector::default()];
    keys[1].set_hold_back_events(true);
    let mut rest = data;
    let mut now = start;
    let mut due = Vec::new();
    while let [flags, src, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let mut packet = tail[..n].to_vec();
        rest = &tail[n..];
        now += Duration::from_millis(u64::from(flags >> 4) * 150);
        let leg = if flags & 1 == 0 { Leg::A } else { Leg::B };
        let channel = if flags & 2 == 0 { Channel::Rtp } else { Channel::Rtcp };
        let src: SocketAddr = match src % 4 {
            0 => a,
            1 => b,
            2 => ([192, 0, 2, 10], 4002).into(),
            _ => ([203, 0, 113, *src], 7000 + u16::from(*src)).into(),
        };
        if flags & 4 != 0 {
            let digit = ['1', '#', '*', 'A', 'x'][usize::from(*len) % 5];
            let _ = keys[leg.index()].press(digit, 101, now);
        }
        if let Verdict::Forward(_) = switch.on_packet(leg, channel, src, now)
            && channel == Channel::Rtp
        {
            let _ = dtmf[leg.index()].on_rtp(&packet);
            splice[leg.other().index()].rewrite(src, &mut packet);
            let event_pt = dtmf[leg.index()].payload_type();
            let _ = keys[leg.other().index()].on_forward(&mut packet, event_pt, now);
        }
        for k in &mut keys {
            if k.next_due().is_some_and(|t| t <= now) {
                due.clear();
                let _ = k.pop_due(now, &mut due);
            }
        }
        let _ = switch.is_timed_out(now);
    }
}

/// RTP/RTCP in the WebRTC bridge's media paths (see `media::webrtc::fuzz_bridge`).
pub fn bridge_rtp(data: &[u8]) {
    crate::media::webrtc::fuzz_bridge(data);
}

/// Datagrams into a whole WebRTC bridge session (see `media::webrtc::fuzz_session`).
pub fn bridge_session(data: &[u8]) {
    crate::media::webrtc::fuzz_session(data);
}

/// An MQTT command: `<verb>\n<payload>`, parsed (as an extension's command
/// and as a PBX-wide one) then planned against a set of live calls.
pub fn mqtt_command(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(verb) = std::str::from_utf8(&data[..split]) else { return };
    let payload = data.get(split + 1..).unwrap_or_default();
    // A setting from Home Assistant (cmd/dnd, cmd/forward_*): what parses is
    // stored and read back unchanged.
    if crate::phone_settings::Change::is_field(verb) {
        if let Ok(change) = crate::phone_settings::Change::parse(verb, payload) {
            let (field, value) = change.to_row();
            assert_eq!(crate::phone_settings::Change::from_row(field, &value).as_ref(), Ok(&change), "stored setting reads back");
        }
        return;
    }
    // The PBX-wide commands (`<base>/cmd/<verb>`, JSON): what parses names
    // valid parties and text.
    if let Ok(action) = crate::mqtt::commands::parse_pbx(verb, payload) {
        match action {
            crate::mqtt::commands::Action::Announce { to, text } => assert!(!to.is_empty() && to.len() <= 32 && !text.is_empty()),
            crate::mqtt::commands::Action::Dial { from, to } => assert!(from != to && !from.is_empty() && !to.is_empty()),
            other => panic!("parse_pbx made {other:?}"),
        }
    }
    let Ok(parsed) = crate::mqtt::commands::parse(verb, payload) else { return };
    let calls = [
        crate::mqtt::pbx::LiveCall { call_id: "c1".into(), caller: "101".into(), callee: "102".into(), answered: true, ..Default::default() },
        crate::mqtt::pbx::LiveCall { call_id: "c2".into(), caller: "103".into(), callee: "101".into(), answered: false, ..Default::default() },
    ];
    for n in 0..=calls.len() {
        let _ = crate::mqtt::commands::plan("101", parsed.clone(), &calls[..n]);
    }
}

/// The Wyoming frame decoder, fed in chunks (the first byte sets the size).
pub fn wyoming_frame(data: &[u8]) {
    use crate::agent::backends::wyoming::frame::{encode, Decoder};
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut dec = Decoder::new();
    for piece in rest.chunks(chunk) {
        dec.push(piece);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => {
                    // what we decode, we can encode and decode back
                    let mut again = Decoder::new();
                    again.push(&encode(&ev));
                    let back = again.next_event();
                    assert!(matches!(back, Ok(Some(_))), "re-encoded event does not decode: {back:?}");
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = dec.in_event();
}

/// options.json as the Supervisor writes it, and the config built from it.
pub fn addon_options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok((options, _unknown)) = crate::addon::options::parse(text) else { return };
    let env = crate::addon::options::Environment {
        data_dir: std::path::Path::new("/data"),
        bind: Ipv4Addr::UNSPECIFIED.into(),
        advertise: Ipv4Addr::new(192, 0, 2, 5).into(),
        http_port: 8099,
        mqtt: None,
    };
    let _ = crate::addon::options::to_config(&options, &env);
}

/// The YAML config file (parse and validate).
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::config::parse(text);
}

/// SUBSCRIBE handling (RFC 6665): the Event package, the fields the handler
/// reads (Expires, Contact, Record-Route, the Event id), the subscription
/// table, and the NOTIFY bodies (RFC 4235 dialog-info, RFC 3842 message
/// summary) built from what was read. What the fuzzer wrote reaches the XML
/// only escaped.
pub fn subscribe(data: &[u8]) {
    use crate::sip::subscriptions::blf::{Dialog, DialogState, Direction};
    use crate::sip::subscriptions::bodies::{dialog_info, message_summary, Counts};
    use crate::sip::subscriptions::table::{Limits, Package, Table};
    use rsipstack::sip::HeadersExt;
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(data) else { return };
    let event = req.headers.iter().find(|h| h.name().eq_ignore_ascii_case("Event")).map(|h| h.value().to_string()).unwrap_or_default();
    let Some(package) = Package::parse(&event) else { return };
    let source: SocketAddr = ([192, 0, 2, 8], 5060).into();
    let Ok(sub) = crate::sip::subscriptions::handler::parse(&req, "101", package, &event, source, Transport::Udp) else { return };
    let target = sub.target.clone();
    let call_id = sub.call_id.clone();
    let remote = req.from_header().ok().and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_string)).unwrap_or_default();
    let limits = Limits { min_expires: 60, max_expires: 3600, default_expires: 600, max_per_extension: 4, max_total: 8 };
    let mut table = Table::new(limits);
    if table.subscribe(sub, "fuzz-tag".into(), 1_000).is_ok() {
        let _ = table.changed(package, std::slice::from_ref(&target), 1_001);
        let _ = table.expire(1_000_000);
    }
    let dialogs = [Dialog { call_id, state: DialogState::Early, direction: Direction::Recipient, remote: remote.clone() }];
    let body = dialog_info(&target, "pbx.invalid", 1, &dialogs, &|_: &str| Some(remote.clone()));
    // each element the body opens is one of ours: nothing unescaped got in
    for tag in body.split('<').skip(1) {
        let name = tag.trim_start_matches(['/', '?']).split([' ', '>', '/']).next().unwrap_or("");
        assert!(
            matches!(name, "xml" | "dialog-info" | "dialog" | "state" | "local" | "remote" | "identity" | "target"),
            "unexpected element `{name}` in dialog-info:\n{body}"
        );
    }
    let summary = message_summary(&target, "pbx.invalid", Counts { new: 1, old: 2 });
    // three lines, whatever the watched extension was called
    assert_eq!(summary.matches(['\r', '\n']).count(), 6, "{summary:?}");
}

/// The panel's inputs from a browser: the session cookie in a Cookie header,
/// the one-time login token (`?login=`, then redeemed), the sign-in JSON, the
/// history's page key (`?before=MS.SEQ`), and the ingress user headers.
pub fn panel_sign_in(data: &[u8]) {
    use crate::http::panel::sessions::{cookie_session, Sessions};
    use crate::http::panel::{IndexQuery, SignIn};
    let text = String::from_utf8_lossy(data);
    let now = Instant::now();
    let mut sessions = Sessions::new(Some("Tok3nTok3n".into()), Duration::from_secs(600), 4);
    let id = sessions.open(crate::http::panel::sessions::Role::Admin, now, "s3ss10n".into());
    if let Some(cookie) = cookie_session(&text) {
        assert!(!cookie.is_empty());
        assert_eq!(sessions.role(cookie, now).is_some(), cookie == id, "cookie `{cookie}`");
    }
    if let Ok(uri) = format!("/panel/?{text}").parse::<axum::http::Uri>()
        && let Ok(q) = axum::extract::Query::<IndexQuery>::try_from_uri(&uri)
        && let Some(token) = q.0.login
    {
        let opened = sessions.redeem_login(&token, now, "other".into());
        assert_eq!(opened.is_some(), token == "Tok3nTok3n", "token `{token}`");
        assert!(sessions.redeem_login("Tok3nTok3n", now, "again".into()).is_none() || opened.is_none(), "a login token works once");
    }
    if let Ok(form) = serde_json::from_slice::<SignIn>(data) {
        let _ = (form.extension.len(), form.password.len());
    }
    // A page key that parses names a real place and reads back as written.
    if let Some(key) = crate::storage::PageKey::parse(&text) {
        assert!(key.started_at > 0 && (key.seq > 0 || key.seq == i64::MIN), "{key:?}");
        assert_eq!(crate::storage::PageKey::parse(&key.to_string()), Some(key));
    }
    ingress_user(data);
}

/// The ingress proxy's user headers, one value per line: what is taken is
/// trimmed, short and free of control characters; the id is never empty.
fn ingress_user(data: &[u8]) {
    use crate::addon::ha_users::{HaUser, HEADER_DISPLAY_NAME, HEADER_USER_ID, HEADER_USER_NAME, MAX_HEADER};
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [HEADER_USER_ID, HEADER_USER_NAME, HEADER_DISPLAY_NAME].into_iter().zip(data.split(|&b| b == b'\n')) {
        if let Ok(value) = axum::http::HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    if let Ok(Some(user)) = HaUser::from_headers(&headers) {
        for text in [Some(&user.id), user.username.as_ref(), Some(&user.name)].into_iter().flatten() {
            assert!(!text.is_empty() && text.len() <= MAX_HEADER && text.trim() == text && !text.chars().any(char::is_control), "{user:?}");
        }
    }
}

/// What ha-pbx reads by hand from a provider's messages: the user of
/// P-Asserted-Identity, the caller's number shown to the extension (never
/// anything that could end a header), the dialled number and target of an
/// inbound call, a REGISTER refusal's Min-Expires.
pub fn trunk(data: &[u8]) {
    use crate::config::trunks::{valid_user, TrunkConfig};
    use rsipstack::sip::HeadersExt;
    static TRUNK: std::sync::OnceLock<TrunkConfig> = std::sync::OnceLock::new();
    let trunk = TRUNK.get_or_init(|| {
        serde_norway::from_str("name: carrier\nserver: 192.0.2.30\ninbound: '101'\nusername: '4930555'\ndids: {'+4930555100': '102'}\n")
            .expect("the fuzz target's trunk")
    });
    let Ok(msg) = SipMessage::try_from(data) else { return };
    let (headers, from) = match &msg {
        SipMessage::Request(r) => (&r.headers, r.from_header().ok()),
        SipMessage::Response(r) => (&r.headers, r.from_header().ok()),
    };
    let asserted = headers.iter().find_map(|h| match h {
        rsipstack::sip::Header::Other(n, v) if n.eq_ignore_ascii_case("P-Asserted-Identity") => crate::sip::trunk::inbound::uri_user(v),
        _ => None,
    });
    let from_user = from.and_then(|f| f.uri().ok()).and_then(|u| u.user().map(str::to_string));
    let caller = crate::trunk::routes::caller_number(from_user.as_deref(), asserted.as_deref());
    assert!(caller == "anonymous" || valid_user(&caller), "caller `{caller}`");
    match &msg {
        SipMessage::Request(req) => {
            let to_user = req.to_header().ok().and_then(|t| t.uri().ok()).and_then(|u| u.user().map(str::to_string));
            if let Some(dest) = crate::trunk::routes::inbound(trunk, req.uri.user(), to_user.as_deref()) {
                assert!(dest.target == "101" || dest.target == "102", "{}", dest.target);
            }
        }
        SipMessage::Response(resp) => {
            let _: Option<u32> = resp.headers.iter().find_map(|h| match h {
                rsipstack::sip::Header::MinExpires(v) => v.value().trim().parse().ok(),
                _ => None,
            });
        }
    }
}
