//! Authentication of SIP requests: digest (sans-IO), the ban list (sans-IO),
//! and the glue that checks a request against the extension directory.
pub mod ban;
pub mod digest;
pub mod flood;
pub mod flows;
pub mod nonces;
pub mod request;
