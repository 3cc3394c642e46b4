//! Topic names and MQTT-safe ids, in one place so that discovery, state and
//! commands can never disagree about where something lives.

/// Builds every topic from the configured base topic and discovery prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
    prefix: String,
    /// `base` made safe for discovery ids and unique ids.
    node: String,
}

impl Topics {
    pub fn new(base_topic: &str, discovery_prefix: &str) -> Self {
        let base = base_topic.trim_matches('/').to_string();
        let prefix = discovery_prefix.trim_matches('/').to_string();
        Topics { node: object_id(&base), base, prefix }
    }

    /// `online`/`offline`, retained; `offline` is our last will.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    /// Home Assistant's birth and will messages.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.prefix)
    }
    /// The bridge device's JSON state (counts, version).
    pub fn bridge_state(&self) -> String {
        format!("{}/state", self.base)
    }
    pub fn last_call(&self) -> String {
        format!("{}/last_call", self.base)
    }
    /// Every bus event as JSON, for consumers other than Home Assistant.
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }
    /// Retained list of the extension device ids we announced, so that a
    /// restart with fewer extensions can remove the ones that went away.
    pub fn devices(&self) -> String {
        format!("{}/devices", self.base)
    }
    /// `<base>/ext/<id>/<leaf>`; `id` is an [`object_id`].
    pub fn ext(&self, id: &str, leaf: &str) -> String {
        format!("{}/ext/{id}/{leaf}", self.base)
    }
    /// Subscription filter for every extension command.
    pub fn command_filter(&self) -> String {
        format!("{}/ext/+/cmd/+", self.base)
    }
    /// Subscription filter for the PBX-wide commands (`<base>/cmd/<verb>`,
    /// JSON payloads naming their parties: announce to a number outside).
    pub fn pbx_command_filter(&self) -> String {
        format!("{}/cmd/+", self.base)
    }
    /// The verb of a PBX-wide command topic.
    pub fn parse_pbx_command<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let verb = topic.strip_prefix(&self.base)?.strip_prefix("/cmd/")?;
        (!verb.is_empty() && !verb.contains('/')).then_some(verb)
    }
    pub fn discovery(&self, device_id: &str) -> String {
        format!("{}/device/{device_id}/config", self.prefix)
    }
    pub fn bridge_device_id(&self) -> String {
        self.node.clone()
    }
    pub fn ext_device_id(&self, id: &str) -> String {
        format!("{}_ext_{id}", self.node)
    }
    /// `<base>/trunk/<id>/state`; `id` is an [`object_id`] of the trunk's name.
    pub fn trunk_state(&self, id: &str) -> String {
        format!("{}/trunk/{id}/state", self.base)
    }
    pub fn trunk_device_id(&self, id: &str) -> String {
        format!("{}_trunk_{id}", self.node)
    }
    /// The trunk id back from a device id we made, if it is one.
    pub fn trunk_id_of_device<'a>(&self, device_id: &'a str) -> Option<&'a str> {
        device_id.strip_prefix(&self.node)?.strip_prefix("_trunk_").filter(|s| !s.is_empty())
    }
    /// The extension id back from a device id we made, if it is one.
    pub fn ext_id_of_device<'a>(&self, device_id: &'a str) -> Option<&'a str> {
        device_id.strip_prefix(&self.node)?.strip_prefix("_ext_").filter(|s| !s.is_empty())
    }
    /// `(extension id, verb)` of a command topic.
    pub fn parse_command<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = topic.strip_prefix(&self.base)?.strip_prefix("/ext/")?;
        let (id, verb) = rest.split_once("/cmd/")?;
        (!id.is_empty() && !id.contains('/') && !verb.is_empty() && !verb.contains('/')).then_some((id, verb))
    }
    /// Prefix for unique ids of entities.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// An id usable in a topic level and as a discovery object id
/// (`[A-Za-z0-9_-]+`). Other characters become `_`, and a short hash of the
/// original is appended so that `a.b` and `a_b` still get different ids.
pub fn object_id(s: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !s.is_empty() && s.chars().all(ok) {
        return s.to_string();
    }
    let clean: String = s.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    format!("{clean}_{:08x}", fnv1a(s.as_bytes()))
}

/// Stable across runs and platforms (unlike std's hasher), which ids need.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_kept_and_others_are_made_safe_and_distinct() {
        assert_eq!(object_id("101"), "101");
        assert_eq!(object_id("front-door_1"), "front-door_1");
        let a = object_id("a.b");
        let b = object_id("a_b");
        assert!(a.starts_with("a_b_") && a != b, "{a} vs {b}");
        assert!(object_id("x/y+#").chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_eq!(object_id("a.b"), a, "stable");
        assert!(!object_id("").is_empty());
    }

    #[test]
    fn topics_and_ids() {
        let t = Topics::new("ha_pbx", "homeassistant");
        assert_eq!(t.status(), "ha_pbx/status");
        assert_eq!(t.ha_status(), "homeassistant/status");
        assert_eq!(t.ext("101", "state"), "ha_pbx/ext/101/state");
        assert_eq!(t.discovery(&t.ext_device_id("101")), "homeassistant/device/ha_pbx_ext_101/config");
        assert_eq!(t.ext_id_of_device("ha_pbx_ext_101"), Some("101"));
        assert_eq!(t.ext_id_of_device("other_ext_101"), None);
        assert_eq!(t.ext_id_of_device("ha_pbx"), None);
    }

    #[test]
    fn command_topics_parse() {
        let t = Topics::new("pbx/home", "homeassistant");
        assert_eq!(t.command_filter(), "pbx/home/ext/+/cmd/+");
        assert_eq!(t.parse_command("pbx/home/ext/101/cmd/hangup"), Some(("101", "hangup")));
        assert_eq!(t.parse_command("pbx/home/ext/101/state"), None);
        assert_eq!(t.parse_command("pbx/home/ext//cmd/x"), None);
        assert_eq!(t.parse_command("other/ext/101/cmd/x"), None);
        assert_eq!(t.pbx_command_filter(), "pbx/home/cmd/+");
        assert_eq!(t.parse_pbx_command("pbx/home/cmd/announce"), Some("announce"));
        assert_eq!(t.parse_pbx_command("pbx/home/cmd/"), None);
        assert_eq!(t.parse_pbx_command("pbx/home/cmd/a/b"), None);
        assert_eq!(t.parse_pbx_command("pbx/home/ext/101/cmd/announce"), None);
        assert_eq!(t.node(), "pbx_home_".to_string() + &format!("{:08x}", fnv1a(b"pbx/home")));
    }
}
