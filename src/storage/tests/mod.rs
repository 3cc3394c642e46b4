//! Storage tests, one file per concern; shared fixtures here.
mod bindings;
mod extensions;
mod history;
mod open;
mod writer;

use super::{BindingRow, Store};
use crate::config::ExtensionConfig;

fn ext(extension: &str, password: &str, name: Option<&str>) -> ExtensionConfig {
    ExtensionConfig {
        extension: extension.into(),
        password: password.into(),
        name: name.map(Into::into),
        dtmf: Default::default(),
        forward: Default::default(),
        dnd: false,
        kind: Default::default(),
        door_open: None,
    }
}

fn binding(extension: &str, contact: &str, expires_at: i64) -> BindingRow {
    BindingRow {
        extension: extension.into(),
        contact_uri: contact.into(),
        source_addr: "192.0.2.10:5060".into(),
        transport: "udp".into(),
        expires_at,
        call_id: format!("reg-{extension}-{contact}"),
        cseq: 7,
        user_agent: Some("TestPhone/1.0".into()),
        instance_id: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into()),
        reg_id: Some(1),
        registered_at: expires_at - 3600,
    }
}

/// An in-memory store with extensions 101 and 102 from config.
async fn store_with_101_102() -> Store {
    let store = Store::open_in_memory().await.unwrap();
    store
        .sync_config_extensions(&[ext("101", "pw1", Some("Kitchen")), ext("102", "pw2", None)], "ha-pbx")
        .await
        .unwrap();
    store
}
