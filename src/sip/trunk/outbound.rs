//! A call out over a trunk: the route has allowed it (`crate::trunk::routes`);
//! this builds how it is presented to the provider (From and the identity
//! headers carry the trunk's caller ID, the credential answers its 401/407)
//! and hands it to the B2BUA like any other call, media through the relay.
use crate::sip::b2bua::call::{self, CallSetup};
use crate::sip::b2bua::fork::Presented;
use crate::sip::core::SipCoreRef;
use crate::sip::registrar::bindings::Binding;
use crate::trunk::failover::Failover;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;

pub struct OutCall {
    pub caller: String,
    pub dialled: String,
    pub trunk: String,
    /// The number as the provider gets it (strip and prepend applied).
    pub number: String,
    /// The route's trunks to try next when this one does not take the call.
    pub failover: Vec<String>,
}

pub async fn run(core: SipCoreRef, mut tx: Transaction, source: SocketAddr, out: OutCall) {
    let failover = Failover::new(&out.failover, &out.number);
    let out_leg = match reach(&core, &out.trunk, &out.number, failover).await {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!(caller = %out.caller, trunk = %out.trunk, error = %e, "call out refused with 503: the provider cannot be reached");
            return reply(&core, &mut tx, StatusCode::ServiceUnavailable).await;
        }
    };
    tracing::info!(caller = %out.caller, dialled = %out.dialled, trunk = %out_leg.trunk, number = %out.number, "call out over the trunk");
    call::run(CallSetup {
        core,
        tx,
        source,
        caller: out.caller,
        callee: out.dialled,
        bindings: vec![out_leg.binding],
        handoff: None,
        agent_note: Default::default(),
        group: None,
        trunk: Some(out_leg.presented),
        auto_answer: false,
        failover: out_leg.failover,
    })
    .await;
}

/// A call leg out over a trunk, ready to ring: where its INVITE goes, how it
/// is presented there (SRTP included: `Presented::srtp`), and the route's
/// trunks left to try when the provider does not take it.
pub struct OutLeg {
    pub trunk: String,
    pub binding: Binding,
    pub presented: Presented,
    pub failover: Option<Failover>,
}

/// `number` on `trunk`, or (a trunk that cannot be reached at all: its TLS,
/// its DNS; as after a 503) on the route's next trunk. Every call out takes
/// this way: dialled, forwarded, a group's fallback. Err: none reachable.
pub async fn reach(core: &SipCoreRef, trunk: &str, number: &str, mut failover: Option<Failover>) -> Result<OutLeg, String> {
    let mut trunk = trunk.to_string();
    loop {
        match prepare(core, &trunk, number).await {
            Ok((binding, presented)) => return Ok(OutLeg { trunk, binding, presented, failover }),
            Err(e) => match failover.as_mut().and_then(|f| f.on_failure(503)) {
                Some(next) => {
                    tracing::warn!(%trunk, error = %e, %next, "call out: the provider cannot be reached, trying the route's next trunk");
                    trunk = next;
                }
                None => return Err(e),
            },
        }
    }
}

/// Where the INVITE for `number` goes on trunk `trunk` (a binding-like
/// target at the provider's address) and how it is presented there.
pub async fn prepare(
    core: &SipCoreRef,
    trunk: &str,
    number: &str,
) -> Result<(Binding, Presented), String> {
    let t = core
        .config
        .trunk(trunk)
        .ok_or_else(|| format!("no trunk `{trunk}`"))?;
    // the target the registration (or keep-alive) uses, resolved as RFC 3263 says
    let server = core.trunk_dns.target(core, t).await?.addr;
    core.trunk_tls.ensure(&core.endpoint.transport_layer, t, server).await?;
    let callee = super::provider_uri(t, Some(number))?;
    let identity = t.caller_id.as_deref().or(t.username.as_deref()).unwrap_or("anonymous");
    let mut from = super::provider_uri(t, Some(identity))?;
    from.params.clear();
    let binding = Binding {
        contact_uri: callee.to_string(),
        source: server.to_string(),
        transport: t.transport.sip(),
        expires_at: i64::MAX,
        call_id: String::new(),
        cseq: 0,
        user_agent: None,
        instance_id: None,
        reg_id: None,
        registered_at: 0,
    };
    let id = format!("<{from}>");
    let headers = vec![Header::Other("P-Asserted-Identity".into(), id.clone()), Header::Other("P-Preferred-Identity".into(), id)];
    let conn = core.trunk_tls.connection(&t.name).await;
    let contact = conn.as_ref().map(|c| core.contact_over(None, t.transport, Some(c)));
    Ok((binding, Presented { from, credential: super::credential(t), headers, contact, srtp: t.srtp }))
}

/// Why the outbound routes do not let an extension call a number outside.
enum Refused {
    /// The matching route does not list the extension.
    NotListed { prefix: String, trunk: String },
    /// No route matches the number.
    NoRoute,
    /// The route's trunk cannot take the call now.
    Trunk(String),
}

/// A call from extension `ext` to `number` outside, as if `ext` had dialled
/// it: where it goes and how it is presented (logged as `what`), or why not.
async fn as_dialled_by(core: &SipCoreRef, ext: &str, number: &str, what: &str) -> Result<OutLeg, Refused> {
    use crate::trunk::routes::{failover_trunks, outbound, Outbound};
    match outbound(&core.config.outbound_routes, ext, number) {
        Outbound::Go { trunk, number: sent } => {
            tracing::info!(extension = %ext, dialled = %number, %trunk, number = %sent, "{what} out over the trunk");
            let failover = Failover::new(failover_trunks(&core.config.outbound_routes, number), &sent);
            reach(core, &trunk, &sent, failover).await.map_err(|e| Refused::Trunk(format!("trunk `{trunk}`: {e}")))
        }
        Outbound::NotAllowed { prefix, trunk } => Err(Refused::NotListed { prefix, trunk }),
        Outbound::NoRoute => Err(Refused::NoRoute),
    }
}

/// Click-to-dial from extension `from` to number `to` outside: allowed by
/// the outbound routes as if `from` had dialled it, else refused.
pub async fn for_dial(core: &SipCoreRef, from: &str, to: &str) -> Result<(Binding, Presented), crate::sip::control_error::ControlError> {
    use crate::sip::control_error::ControlError;
    as_dialled_by(core, from, to, "dial").await.map(|out| (out.binding, out.presented)).map_err(|refused| match refused {
        Refused::Trunk(why) => ControlError::NotPossible(why),
        Refused::NotListed { prefix, trunk } => {
            tracing::warn!(caller = %from, dialled = %to, %trunk, %prefix, "dial refused: the extension is not in this outbound route's `extensions`");
            ControlError::Forbidden(format!("extension {from} may not call {to}: not in the `extensions` of the outbound route `{prefix}`"))
        }
        Refused::NoRoute => ControlError::NoSuchExtension(to.to_string()),
    })
}

/// A forward of extension `by` to `number` outside: allowed by the outbound
/// routes as if `by` had dialled it, failing over as the route says. Err
/// says why not (for the log).
pub async fn for_forward(core: &SipCoreRef, by: &str, number: &str) -> Result<OutLeg, String> {
    as_dialled_by(core, by, number, "forward").await.map_err(|refused| match refused {
        Refused::Trunk(why) => why,
        Refused::NotListed { prefix, .. } => format!("extension {by} is not in the `extensions` of the outbound route `{prefix}`"),
        Refused::NoRoute => format!("no outbound route for {number}"),
    })
}

async fn reply(core: &SipCoreRef, tx: &mut Transaction, status: StatusCode) {
    let mut resp = core.endpoint.make_response(&tx.original, status, None);
    crate::sip::auth::request::ensure_to_tag(&mut resp);
    let _ = tx.respond(resp).await;
}
