//! Back-to-back user agent: calls between extensions.
//!
//! `invite` decides whether a new INVITE may become a call, `call` runs it,
//! `machine` is the sans-IO heart of a call; its media is `crate::media::call_media`.
pub mod auto_answer;
pub mod call;
mod call_setup;
mod call_commands;
mod call_requests;
mod late_offer;
mod trunk_failover;
mod early_media;
pub mod dtmf;
pub mod fork;
pub mod forward;
pub mod group;
pub mod group_call;
pub mod group_setup;
mod forks;
pub mod handoff;
pub mod originate;
pub mod page;
mod page_call;
mod page_requests;
pub mod park;
mod park_call;
pub mod pickup;
mod preview;
mod pickup_call;
pub mod invite;
pub mod machine;
mod messages_call;
pub mod registry;
