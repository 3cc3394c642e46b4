//! `trunks:` and `outbound_routes:` as the options form holds them, to the
//! config's shape: lists the form cannot hold are one text (`inbound_hosts`
//! and a route's `extensions` and `failover` separated by commas or spaces, `dids` as
//! `NUMBER=EXTENSION` pairs); empty fields are left out. The config's checks
//! then name every mistake. Sans-IO.
use super::option_values::{items, kind};
use anyhow::{bail, Result};
use serde_json::{Map, Value};

pub fn parse(obj: &Map<String, Value>) -> Result<(Vec<Value>, Vec<Value>)> {
    let trunks = list(obj, "trunks")?
        .into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            split_list(&mut t, "inbound_hosts");
            if let Some(Value::String(s)) = t.get("dids").cloned() {
                let mut dids = Map::new();
                for pair in items(&s) {
                    let Some((number, target)) = pair.split_once('=') else {
                        bail!("trunks[{i}].dids: `{pair}` is not NUMBER=EXTENSION (e.g. 4930123457=101)");
                    };
                    dids.insert(number.trim().to_string(), Value::String(target.trim().to_string()));
                }
                t.insert("dids".into(), Value::Object(dids));
            }
            Ok(Value::Object(t))
        })
        .collect::<Result<Vec<_>>>()?;
    let routes = list(obj, "outbound_routes")?
        .into_iter()
        .map(|mut r| {
            split_list(&mut r, "extensions");
            split_list(&mut r, "failover");
            Value::Object(r)
        })
        .collect();
    Ok((trunks, routes))
}

/// The entries of list `key`, each an object without its empty fields and
/// with numbers as text (the form hands `101` as a number).
fn list(obj: &Map<String, Value>, key: &str) -> Result<Vec<Map<String, Value>>> {
    let items = match obj.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => bail!("{key}: expected a list, found {}", kind(other)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(m) = item else {
                bail!("{key}[{i}]: expected an object, found {}", kind(item));
            };
            let mut m = m.clone();
            m.retain(|_, v| !v.is_null() && *v != Value::String(String::new()));
            for v in m.values_mut() {
                if let Value::Number(n) = v
                    && !n.is_f64()
                {
                    *v = Value::String(n.to_string());
                }
            }
            // strip is a count, not a number to dial
            if let Some(Value::String(s)) = m.get("strip").cloned()
                && let Ok(n) = s.parse::<u64>()
            {
                m.insert("strip".into(), Value::from(n));
            }
            Ok(m)
        })
        .collect()
}

fn split_list(m: &mut Map<String, Value>, key: &str) {
    if let Some(Value::String(s)) = m.get(key).cloned() {
        m.insert(key.into(), Value::Array(items(&s).map(|x| Value::String(x.into())).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_fields_become_the_configs_shape() {
        let obj = json!({
            "trunks": [{"name": "sipgate", "server": "sipgate.de", "username": 1234567, "password": "pw", "caller_id": "",
                        "inbound": 101, "dids": "4930123457=102, 4930123458=agent", "inbound_hosts": "192.0.2.1, 192.0.2.2:5060", "tls_ca": ""},
                       {"name": "box", "server": "fritz.box:5061", "transport": "tls", "tls_ca": "/ssl/box-ca.pem", "srtp": "mandatory"}],
            "outbound_routes": [{"prefix": "0", "trunk": "sipgate", "strip": 0, "extensions": "101, 102", "failover": "box, other"}],
        });
        let (trunks, routes) = parse(obj.as_object().unwrap()).unwrap();
        assert_eq!(trunks[0]["username"], "1234567");
        assert_eq!(trunks[0]["inbound"], "101");
        assert!(trunks[0].get("caller_id").is_none());
        assert_eq!(trunks[0]["dids"], json!({"4930123457": "102", "4930123458": "agent"}));
        assert_eq!(trunks[0]["inbound_hosts"], json!(["192.0.2.1", "192.0.2.2:5060"]));
        assert_eq!(routes[0]["extensions"], json!(["101", "102"]));
        assert_eq!(routes[0]["strip"], json!(0));
        assert_eq!(routes[0]["failover"], json!(["box", "other"]));
        // an empty tls_ca is no tls_ca; a set one is the path as given
        assert!(trunks[0].get("tls_ca").is_none());
        assert_eq!((&trunks[1]["transport"], &trunks[1]["tls_ca"]), (&json!("tls"), &json!("/ssl/box-ca.pem")));
        assert_eq!(trunks[1]["srtp"], json!("mandatory"));
    }

    #[test]
    fn a_bad_did_pair_is_named() {
        let obj = json!({"trunks": [{"name": "t", "server": "x", "dids": "4930123457"}]});
        let e = parse(obj.as_object().unwrap()).unwrap_err().to_string();
        assert!(e.contains("trunks[0].dids") && e.contains("NUMBER=EXTENSION"), "{e}");
        let obj = json!({"trunks": "x"});
        assert!(parse(obj.as_object().unwrap()).is_err());
    }
}
