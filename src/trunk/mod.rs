//! SIP trunks: the phone network through a provider's SIP account.
//!
//! Sans-IO decisions only (no sockets, no clocks, no SIP stack): when to
//! REGISTER and what its outcome means (`registration`), which trunk a
//! request comes from and where its call goes, and which extension may call
//! which number out (`routes`), which trunk a failed call out tries next
//! (`failover`), whether the provider answers OPTIONS
//! (`keepalive`), which of the provider's servers to use (`server`, RFC
//! 3263 SRV order and failover), what a `transport: tls` trunk trusts and
//! the name its certificate must hold (`tls`), and the state shown in
//! `/health` (`status`).
//! The SIP side that moves the bytes is `crate::sip::trunk`.
pub mod failover;
pub mod keepalive;
pub mod registration;
pub mod routes;
pub mod server;
pub mod status;
pub mod tls;

pub use keepalive::{KeepAlive, Reach};
pub use registration::{Outcome, RegMachine, RegStatus};
pub use routes::{Inbound, Outbound};
pub use status::{TrunkState, TrunkTable};
