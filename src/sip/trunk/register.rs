//! One registering trunk's task: asks its `RegMachine` when to REGISTER,
//! sends it with rsipstack's `Registration` (which answers 401/407 and a
//! stale nonce with the credential), and feeds the outcome back.
use super::update;
use crate::config::TrunkConfig;
use crate::sip::core::SipCoreRef;
use crate::trunk::server::{Next, fails_over};
use crate::trunk::{Outcome, RegMachine};
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Header, StatusCodeKind};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A REGISTER transaction ends by itself (Timer F, 32 s); this is a backstop.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(40);
/// How long the un-REGISTER at shutdown may take (with its 401/407).
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(4);

/// `back_up`: the keep-alive saw the provider again after it was down.
pub async fn run(core: SipCoreRef, t: TrunkConfig, back_up: std::sync::Arc<tokio::sync::Notify>, cancel: CancellationToken) {
    let epoch = Instant::now();
    let now_ms = || epoch.elapsed().as_millis() as u64;
    let mut machine = RegMachine::new(t.expires_secs, now_ms());
    let mut reg = Registration::new(core.endpoint.clone(), super::credential(&t));
    let mut last_state = "";
    loop {
        if let Some(expires) = machine.poll(now_ms()) {
            let outcome = tokio::select! {
                o = register_once(&core, &t, &mut reg, expires) => o,
                _ = cancel.cancelled() => return unregister(&core, &t, &mut reg, &mut machine, now_ms()).await,
            };
            let now = now_ms();
            let failed = !matches!(outcome, Outcome::Registered { .. });
            machine.on_outcome(now, outcome);
            let status = machine.status(now);
            if failed {
                tracing::warn!(trunk = %t.name, error = status.last_error.as_deref().unwrap_or(""), retry_in_secs = status.next_attempt_in.unwrap_or(0),
                    failures = status.failures, "trunk registration failed");
            } else if last_state != "registered" {
                tracing::info!(trunk = %t.name, expires_secs = status.expires_in.unwrap_or(0), "trunk registered");
            } else {
                tracing::debug!(trunk = %t.name, expires_secs = status.expires_in.unwrap_or(0), "trunk registration refreshed");
            }
            last_state = status.state;
            update(&core, &t.name, |s| s.registration = Some(status));
        }
        let wake = machine.next_wake().map(|at| epoch + Duration::from_millis(at));
        let status = machine.status(now_ms());
        update(&core, &t.name, |s| s.registration = Some(status));
        tokio::select! {
            _ = sleep_until(wake) => {}
            _ = back_up.notified() => {
                tracing::info!(trunk = %t.name, "provider reachable again: registering now");
                machine.restart(now_ms());
            }
            _ = cancel.cancelled() => return unregister(&core, &t, &mut reg, &mut machine, now_ms()).await,
        }
    }
}

/// ha-pbx is stopping: the provider stops sending calls to an address that
/// will not answer them (RFC 3261 10.2.2, Expires: 0), when it holds our
/// registration.
async fn unregister(core: &SipCoreRef, t: &TrunkConfig, reg: &mut Registration, machine: &mut RegMachine, now_ms: u64) {
    if !machine.stop(now_ms) {
        return;
    }
    match tokio::time::timeout(UNREGISTER_TIMEOUT, register_once(core, t, reg, 0)).await {
        Ok(Outcome::Registered { .. }) => tracing::info!(trunk = %t.name, "trunk unregistered"),
        Ok(other) => tracing::warn!(trunk = %t.name, outcome = ?other, "trunk un-REGISTER refused; the provider's registration runs out by itself"),
        Err(_) => tracing::warn!(trunk = %t.name, "no answer to the trunk's un-REGISTER; the provider's registration runs out by itself"),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        // Wake at least every 30 s so the status's countdowns stay fresh.
        Some(at) => tokio::time::sleep_until(at.min(Instant::now() + Duration::from_secs(30))).await,
        None => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

/// One REGISTER, sent to the provider's targets in turn (RFC 3263 4.3):
/// one that does not answer, fails at the transport or answers 503 hands
/// over to the next at once; the outcome of the last one tried counts.
async fn register_once(
    core: &SipCoreRef,
    t: &TrunkConfig,
    reg: &mut Registration,
    expires: u32,
) -> Outcome {
    let mut target = match core.trunk_dns.target(core, t).await {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(e),
    };
    // the failures of earlier targets, so that the error shown says what
    // went wrong at each (a certificate refused at the first, no answer at
    // the second)
    let mut earlier: Vec<String> = Vec::new();
    // each target at most once per attempt, however the list changes
    for _ in 0..crate::trunk::server::MAX_CANDIDATES {
        let outcome = register_at(core, t, reg, expires, target.addr).await;
        if !fails_over(&outcome) {
            return outcome;
        }
        let reason = match &outcome {
            Outcome::Refused { code, reason, .. } => format!("{code} {reason}"),
            Outcome::Failed(e) => e.clone(),
            Outcome::Registered { .. } => String::new(),
        };
        match core.trunk_dns.failed(core, t, target.addr, &reason) {
            Next::Try(next) if next.addr != target.addr => target = next,
            _ => {
                return match outcome {
                    Outcome::Failed(last) if !earlier.is_empty() => {
                        earlier.push(last);
                        earlier.dedup();
                        Outcome::Failed(earlier.join("; then "))
                    }
                    other => other,
                };
            }
        }
        if !earlier.contains(&reason) && earlier.len() < 4 {
            earlier.push(reason);
        }
    }
    Outcome::Failed("every target of the trunk's server failed".into())
}

async fn register_at(
    core: &SipCoreRef,
    t: &TrunkConfig,
    reg: &mut Registration,
    expires: u32,
    server: std::net::SocketAddr,
) -> Outcome {
    let uri = match super::provider_uri(t, None) {
        Ok(u) => u,
        Err(e) => return Outcome::Failed(e),
    };
    if let Err(e) = core.trunk_tls.ensure(&core.endpoint.transport_layer, t, server).await {
        return Outcome::Failed(e);
    }
    // Our Contact carries the trunk's username: providers route calls to it,
    // and the inbound side reads it as the dialled number. Over TLS it names
    // the trunk's connection, which the provider's calls then come over.
    let conn = core.trunk_tls.connection(&t.name).await;
    let contact_uri = core.contact_over(t.username.as_deref(), t.transport, conn.as_ref());
    reg.contact = Some(rsipstack::sip::typed::Contact { display_name: None, uri: contact_uri, params: vec![] });
    reg.outbound_proxy = Some(server);
    let resp = match tokio::time::timeout(REGISTER_TIMEOUT, reg.register(uri, Some(expires))).await {
        Err(_) => return Outcome::Failed("no answer from the provider".into()),
        Ok(Err(e)) => return Outcome::Failed(format!("{e}")),
        Ok(Ok(resp)) => resp,
    };
    if resp.status_code.kind() == StatusCodeKind::Successful {
        return Outcome::Registered { granted_secs: reg.expires() };
    }
    let code = resp.status_code.code();
    let mut reason = resp.status_code.text().to_string();
    if matches!(code, 401 | 403 | 407) {
        reason.push_str(" (check the trunk's username, auth_username and password)");
    }
    let min_expires = resp.headers.iter().find_map(|h| match h {
        Header::MinExpires(v) => v.value().trim().parse().ok(),
        Header::Other(n, v) if n.eq_ignore_ascii_case("Min-Expires") => v.trim().parse().ok(),
        _ => None,
    });
    Outcome::Refused { code, reason, min_expires }
}
