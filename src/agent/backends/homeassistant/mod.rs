//! Home Assistant: REST (services, states, notifications), the WebSocket
//! API's client (also the add-on's, for `/core/websocket`) and the Assist
//! brain over it.
pub mod assist;
pub mod rest;
pub mod urls;
pub mod ws;
pub mod ws_msg;

pub use assist::AssistBrain;
pub use rest::HaClient;
pub use urls::{ha_urls, HaUrls, SUPERVISOR_CORE};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod live_tests;
