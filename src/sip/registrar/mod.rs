//! Registrar: REGISTER handling (`handler`) on top of the location service (`bindings`).
pub mod bindings;
pub mod handler;
pub mod sweeper;
