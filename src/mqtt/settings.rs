//! Do-not-disturb and forwards as Home Assistant entities (issue 14): a
//! `switch` for DND, a `text` per forward (always, busy, no answer) and a
//! `number` for how long to ring before the no-answer forward, all reading
//! one retained JSON state, `<base>/ext/<id>/settings`, and
//! commanding `<base>/ext/<id>/cmd/<field>`. An empty forward is none.
use super::topics::Topics;
use crate::config::NO_ANSWER_SECS;
use crate::phone_settings::{Kind, Settings, DND_FIELD, MAX_TARGET, NO_ANSWER_SECS_FIELD};
use serde_json::{json, Value};

/// The leaf of the state topic.
pub const STATE_LEAF: &str = "settings";

/// The retained state of one extension's settings.
pub fn state(s: &Settings) -> Value {
    let t = |v: &Option<String>| v.clone().unwrap_or_default();
    json!({
        "dnd": s.dnd,
        "forward_always": t(&s.forward.always),
        "forward_busy": t(&s.forward.busy),
        "forward_no_answer": t(&s.forward.no_answer),
        NO_ANSWER_SECS_FIELD: s.forward.no_answer_secs,
    })
}

fn name(k: Kind) -> &'static str {
    match k {
        Kind::Always => "Forward always",
        Kind::Busy => "Forward when busy",
        Kind::NoAnswer => "Forward on no answer",
    }
}

/// The discovery components, keyed as in `cmps`.
pub fn components(t: &Topics, id: &str) -> Vec<(String, Value)> {
    let uid = |what: &str| format!("{}_{id}_{what}", t.node());
    let stat_t = t.ext(id, STATE_LEAF);
    let mut out = vec![(
        DND_FIELD.to_string(),
        json!({
            "p": "switch", "name": "Do not disturb", "uniq_id": uid(DND_FIELD),
            "cmd_t": t.ext(id, &format!("cmd/{DND_FIELD}")), "stat_t": stat_t,
            "val_tpl": "{{ 'ON' if value_json.dnd else 'OFF' }}", "ic": "mdi:phone-cancel",
        }),
    )];
    for k in Kind::ALL {
        let f = k.field();
        out.push((
            f.to_string(),
            json!({
                "p": "text", "name": name(k), "uniq_id": uid(f),
                "cmd_t": t.ext(id, &format!("cmd/{f}")), "stat_t": stat_t,
                "val_tpl": format!("{{{{ value_json.{f} }}}}"),
                "min": 0, "max": MAX_TARGET, "pattern": "^[0-9A-Za-z*#+._-]*$", "ic": "mdi:phone-forward",
            }),
        ));
    }
    out.push((
        NO_ANSWER_SECS_FIELD.to_string(),
        json!({
            "p": "number", "name": "Ring before forwarding", "uniq_id": uid(NO_ANSWER_SECS_FIELD),
            "cmd_t": t.ext(id, &format!("cmd/{NO_ANSWER_SECS_FIELD}")), "stat_t": stat_t,
            "val_tpl": format!("{{{{ value_json.{NO_ANSWER_SECS_FIELD} }}}}"),
            "min": NO_ANSWER_SECS.start(), "max": NO_ANSWER_SECS.end(), "step": 1, "mode": "box",
            "unit_of_meas": "s", "dev_cla": "duration", "ic": "mdi:timer-outline",
        }),
    ));
    out
}

/// `config` (an extension device's discovery) with the settings' entities.
pub fn with_components(mut config: Value, t: &Topics, id: &str) -> Value {
    if let Some(cmps) = config.get_mut("cmps").and_then(Value::as_object_mut) {
        cmps.extend(components(t, id));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ForwardConfig;

    #[test]
    fn entities_read_one_state_and_command_one_topic_each() {
        let t = Topics::new("ha_pbx", "homeassistant");
        let c = with_components(json!({"cmps": {}}), &t, "102");
        let cmps = c["cmps"].as_object().unwrap();
        assert_eq!(cmps["dnd"]["p"], "switch");
        assert_eq!(cmps["dnd"]["cmd_t"], "ha_pbx/ext/102/cmd/dnd");
        assert_eq!(cmps["dnd"]["stat_t"], "ha_pbx/ext/102/settings");
        assert_eq!(cmps["dnd"]["uniq_id"], "ha_pbx_102_dnd");
        for f in ["forward_always", "forward_busy", "forward_no_answer"] {
            assert_eq!(cmps[f]["p"], "text", "{f}");
            assert_eq!(cmps[f]["cmd_t"], format!("ha_pbx/ext/102/cmd/{f}"));
            assert_eq!(cmps[f]["val_tpl"], format!("{{{{ value_json.{f} }}}}"));
            assert_eq!(cmps[f]["min"], 0, "empty clears the forward");
        }
        let n = &cmps["forward_no_answer_secs"];
        assert_eq!((n["p"].as_str(), n["min"].as_u64(), n["max"].as_u64()), (Some("number"), Some(1), Some(3600)));
        assert_eq!(n["cmd_t"], "ha_pbx/ext/102/cmd/forward_no_answer_secs");
        assert_eq!(n["val_tpl"], "{{ value_json.forward_no_answer_secs }}");
    }

    #[test]
    fn state_shows_no_forward_as_empty() {
        let s = Settings { dnd: true, forward: ForwardConfig { busy: Some("103".into()), ..Default::default() } };
        assert_eq!(
            state(&s),
            json!({"dnd": true, "forward_always": "", "forward_busy": "103", "forward_no_answer": "", "forward_no_answer_secs": 20})
        );
    }
}
