//! Home Assistant: REST (services, states, notifications) and the Assist
//! brain over the WebSocket API.
pub mod assist;
pub mod rest;
pub mod urls;
pub mod ws_msg;

pub use assist::AssistBrain;
pub use rest::HaClient;
pub use urls::{ha_urls, HaUrls, SUPERVISOR_CORE};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod live_tests;
