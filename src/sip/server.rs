//! Starts the SIP side: listeners, rsipstack endpoint, router and sweeper.
use super::auth::ban::{BanList, BanPolicy};
use super::auth::flood::{FloodLimiter, FloodPolicy};
use crate::config::Cidr;
use super::auth::nonces::{NonceLimits, NonceTable};
use super::conn_limit::{ConnGate, ConnLimits};
use super::core::{now_unix, SipCore, SipCoreRef};
use super::guard::StreamWatch;
use super::registrar::bindings::{BindingTable, Limits};
use super::registrar::handler::from_row;
use crate::config::Config;
use crate::events::EventBus;
use crate::media::MediaEngine;
use crate::storage::{BindingWriter, Store};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::EndpointBuilder;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct SipDeps {
    pub config: Arc<Config>,
    pub store: Store,
    pub binding_writer: BindingWriter,
    pub bus: EventBus,
    pub media: MediaEngine,
}

pub async fn start(deps: SipDeps, cancel: CancellationToken) -> anyhow::Result<SipCoreRef> {
    let SipDeps { config, store, binding_writer, bus, media } = deps;
    let sec = &config.security;
    let policy = BanPolicy {
        max_failures: sec.ban_after_failures,
        window: Duration::from_secs(sec.ban_window_secs),
        ban_for: Duration::from_secs(sec.ban_secs),
    };
    let bans = Arc::new(Mutex::new(BanList::new(policy)));
    let flood = Arc::new(Mutex::new(flood_limiter(sec)?));
    let (transport_layer, listeners, shed) = super::transports::build(&config, &bans, &flood, &cancel).await?;
    // rsipstack's own idle timeout closed every quiet stream connection, the
    // one a registered phone is reached over too; `StreamWatch` closes only
    // those no registration uses (see `sweep_streams`).
    transport_layer.set_stream_idle_timeout(Duration::ZERO);
    let stream_ports = listeners.iter().filter(|(t, _)| matches!(t, crate::config::Transport::Tcp | crate::config::Transport::Tls)).map(|(_, a)| a.port()).collect();
    let limits = ConnLimits { total: sec.max_sip_connections, per_ip: sec.max_sip_connections_per_ip };
    let streams = Arc::new(StreamWatch::new(limits, stream_ports));
    let idle = Duration::from_secs(sec.idle_connection_secs);
    let front = Arc::new(super::front::Front::default());
    // TCP and TLS messages get the raw checks UDP datagrams get (one stack per process)
    let (raw_bans, raw_flood, raw_shed) = (bans.clone(), flood.clone(), shed.clone());
    if !rsipstack::transport::stream::set_raw_message_filter(Box::new(move |data, from| {
        // a stream peer does not retransmit: new work is refused, never dropped
        if raw_shed.judge(data, true) == super::shed::Verdict::Refuse {
            return match super::shed::refusal(data, &format!("{:08x}", rand::random::<u32>())) {
                Some(reply) => rsipstack::transport::stream::RawVerdict::Reply(reply),
                None => rsipstack::transport::stream::RawVerdict::Drop,
            };
        }
        super::guard::raw_verdict(data, from, &raw_bans, &raw_flood, "stream")
    })) {
        tracing::debug!("raw SIP message filter was set already (a second SIP stack in this process)");
    }
    // Call-IDs we make end in our own name, not the library's.
    let option = rsipstack::transaction::endpoint::EndpointOption {
        callid_suffix: Some(format!("ha-pbx.{}", config.sip.advertised_ip(&config.rtp))),
        // an answered outgoing INVITE waits out Timer M as its ACK's bytes in
        // the finished table, not as a task holding its transaction and
        // dialog (rsipstack patch 11): at 500 calls/s 16,000 at once
        accepted_invites_in_table: true,
        // four entries per call (the 407's and the answered INVITE's ACKed
        // marks, the BYE's 200, the outgoing INVITE's ACK) for 64*T1: room for
        // ~1,000 calls/s
        finished_transactions_max: 131_072,
        ..Default::default()
    };
    let endpoint = EndpointBuilder::new()
        .with_option(option)
        .with_user_agent(concat!("ha-pbx/", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(transport_layer)
        .with_cancel_token(cancel.child_token())
        .with_transport_inspector(Box::new(super::guard::Guard {
            bans: bans.clone(),
            flood: flood.clone(),
            blocked_user_agents: sec.blocked_user_agents.iter().map(|u| u.to_ascii_lowercase()).collect(),
            max_message_bytes: sec.max_message_bytes,
            streams: streams.clone(),
            front: front.clone(),
        }))
        .build();
    let incoming = endpoint.incoming_transactions().map_err(|e| anyhow::anyhow!("{e}"))?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));

    let directory: HashMap<_, _> = store.extensions().await?.into_iter().map(|e| (e.extension.clone(), e)).collect();
    let mut location = BindingTable::default();
    let restored = store.load_bindings(now_unix()).await?;
    for row in &restored {
        location.restore(&row.extension, from_row(row));
    }
    if !restored.is_empty() {
        tracing::info!(bindings = restored.len(), "registrations restored from storage");
    }
    let (settings, skipped) = crate::phone_settings::Table::from_rows(store.phone_settings().await?);
    for why in skipped {
        tracing::warn!("stored phone setting ignored: {why}");
    }
    let reg = &config.sip.registration;
    let config_subs = config.sip.subscriptions.clone();
    let websockets = ConnGate::new(ConnLimits { total: sec.max_websockets, per_ip: sec.max_websockets_per_ip });
    let call_slots = ConnGate::new(ConnLimits { total: sec.max_calls, per_ip: sec.max_calls_per_extension });
    // Validated with the config: a bad range never gets here.
    let park_slots = config.park.as_ref().and_then(|p| p.slot_numbers().ok()).unwrap_or_default();
    let core = Arc::new(SipCore {
        limits: Limits {
            min_expires: reg.min_expires,
            max_expires: reg.max_expires,
            default_expires: reg.default_expires,
            max_contacts: reg.max_contacts,
        },
        advertised_ip: config.sip.advertised_ip(&config.rtp),
        nonces: Mutex::new(NonceTable::new(nonce_secret(&config), NonceLimits::with_ttl(config.sip.nonce_ttl_secs))),
        config,
        endpoint: endpoint.inner.clone(),
        dialogs,
        directory: RwLock::new(directory),
        location: Mutex::new(location),
        bans,
        flood,
        api_bans: Mutex::new(BanList::new(policy)),
        diagnostics: Default::default(),
        store,
        binding_writer,
        bus,
        media,
        calls: Default::default(),
        parking: Mutex::new(super::b2bua::park::Lot::new(park_slots)),
        agent: Default::default(),
        listeners,
        websockets,
        call_slots,
        phone_settings: crate::phone_settings::Shared::new(settings),
        trunks: Default::default(),
        trunk_tasks: super::trunk::Tasks::new(cancel.child_token()),
        trunk_dns: Default::default(),
        trunk_tls: Default::default(),
        subscriptions: super::subscriptions::Subscriptions::new(&config_subs),
        flows: Default::default(),
        shed,
    });
    front.attach(core.clone());
    tokio::spawn(async move { endpoint.serve().await });
    tokio::spawn(super::router::serve(core.clone(), incoming));
    tokio::spawn(super::registrar::sweeper::run(core.clone()));
    tokio::spawn(super::subscriptions::notifier::run(core.clone()));
    tokio::spawn(sweep_streams(core.clone(), streams, idle));
    super::trunk::start(&core);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            front.sweep();
        }
    });
    Ok(core)
}

/// Closes SIP stream connections idle for `idle` that no registration uses;
/// checks a few times per `idle` (at least every 30 s, at most every second).
async fn sweep_streams(core: SipCoreRef, streams: Arc<StreamWatch>, idle: Duration) {
    let mut tick = tokio::time::interval((idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)));
    loop {
        tick.tick().await;
        let bound = match core.location.lock() {
            Ok(l) => l.flows(),
            Err(_) => continue,
        };
        streams.sweep_idle(idle, &bound);
    }
}

/// The flood limit from `security.flood_*` and `trusted_sources`.
fn flood_limiter(sec: &crate::config::SecurityConfig) -> anyhow::Result<FloodLimiter> {
    let trusted = sec
        .trusted_sources
        .iter()
        .map(|s| Cidr::parse(s).map_err(|e| anyhow::anyhow!("security.trusted_sources: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = FloodPolicy {
        rate: sec.flood_rate,
        burst: f64::from(sec.flood_burst.max(1)),
        ban_for: Duration::from_secs(sec.flood_ban_secs),
    };
    Ok(FloodLimiter::new(policy, trusted))
}

/// A random secret per process: nonces from before a restart are refused as
/// forged, and devices simply get a fresh challenge.
fn nonce_secret(_config: &Config) -> [u8; 32] {
    rand::random()
}
