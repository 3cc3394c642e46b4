//! SIP control plane: transports, registrar, B2BUA, authentication.
//!
//! A REGISTER goes `router` → `registrar::handler` → `registrar::bindings`;
//! an INVITE goes `router` → `b2bua::invite` → `b2bua::call` (driving
//! `b2bua::machine`), with media through `crate::media::call_media` (the call's media session).
pub mod agent_leg;
pub mod auth;
pub mod b2bua;
pub mod control;
pub mod control_error;
pub mod core;
pub mod core_access;
pub mod core_diagnostics;
pub mod diagnostics;
pub mod front;
pub mod conn_limit;
pub mod guard;
pub mod registrar;
pub mod router;
pub mod server;
pub mod settings;
pub mod shed;
pub mod stateless;
pub mod subscriptions;
pub mod tls_cert;
pub mod trunk;
pub mod transports;
pub mod tx_key;
pub mod udp_socket;
pub mod websocket;
pub mod wellformed;

#[cfg(test)]
mod finished_tx_tests;
#[cfg(test)]
mod waiting_tx_tests;
#[cfg(test)]
mod header_params_tests;
#[cfg(test)]
mod rfc4475_tests;
#[cfg(test)]
mod shed_io_tests;
#[cfg(test)]
mod accepted_tx_tests;
