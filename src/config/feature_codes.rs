//! Feature codes: numbers an extension dials to use a PBX feature instead of
//! calling someone. `pickup`, `messages` and `park` are dialled as they are
//! (`park` as the target of a blind transfer);
//! `directed_pickup` and `intercom` are prefixes followed by an extension's number.
use anyhow::{bail, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureCodes {
    /// Answer the oldest call ringing at a member of one of the caller's groups.
    pub pickup: String,
    /// Prefix: `**102` answers the call ringing at extension 102.
    pub directed_pickup: String,
    /// Prefix: `*80102` calls 102 and asks its phone to answer by itself.
    pub intercom: String,
    /// The agent reads the caller's new messages out and marks them read.
    pub messages: String,
    /// Transfer a call here to park it on a free `park.slots` slot.
    pub park: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes { pickup: "*8".into(), directed_pickup: "**".into(), intercom: "*80".into(), messages: "*97".into(), park: "*70".into() }
    }
}

/// What a dialled number asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    Pickup,
    DirectedPickup(String),
    Intercom(String),
    Messages,
    /// Dialled rather than transferred to: parking needs a REFER.
    Park,
}

impl FeatureCodes {
    /// The feature `dialled` names, if any: `pickup` exactly, else the
    /// longest prefix code followed by at least one character.
    pub fn recognise(&self, dialled: &str) -> Option<Feature> {
        if dialled == self.pickup {
            return Some(Feature::Pickup);
        }
        if dialled == self.messages {
            return Some(Feature::Messages);
        }
        if dialled == self.park {
            return Some(Feature::Park);
        }
        let mut prefixes = [(&self.intercom, 0u8), (&self.directed_pickup, 1u8)];
        prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        for (prefix, kind) in prefixes {
            if let Some(rest) = dialled.strip_prefix(prefix.as_str()).filter(|r| !r.is_empty()) {
                let rest = rest.to_string();
                return Some(if kind == 0 { Feature::Intercom(rest) } else { Feature::DirectedPickup(rest) });
            }
        }
        None
    }

    fn named(&self) -> [(&'static str, &str); 5] {
        [("pickup", &self.pickup), ("messages", &self.messages), ("park", &self.park), ("directed_pickup", &self.directed_pickup), ("intercom", &self.intercom)]
    }

    /// Each code is 1-16 of 0-9 * #, no two are equal, and no extension or
    /// group number is a code or starts with a prefix code.
    pub fn validate<'a>(&self, numbers: impl Iterator<Item = &'a str> + Clone) -> Result<()> {
        let named = self.named();
        for (i, (key, code)) in named.iter().enumerate() {
            if code.is_empty() || code.len() > 16 || !code.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                bail!("feature_codes.{key}: `{code}` must be 1-16 characters of 0-9, * and #");
            }
            if let Some((other, _)) = named[..i].iter().find(|(_, c)| c == code) {
                bail!("feature_codes.{key}: `{code}` is also feature_codes.{other}");
            }
            let prefix = !matches!(*key, "pickup" | "messages" | "park");
            for n in numbers.clone() {
                if n == *code || (prefix && n.starts_with(*code)) {
                    bail!("feature_codes.{key}: `{code}` clashes with the extension or group number `{n}`");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_recognised_longest_prefix_first() {
        let f = FeatureCodes::default();
        assert_eq!(f.recognise("*8"), Some(Feature::Pickup));
        assert_eq!(f.recognise("**102"), Some(Feature::DirectedPickup("102".into())));
        assert_eq!(f.recognise("*80102"), Some(Feature::Intercom("102".into())));
        assert_eq!(f.recognise("*80"), None);
        assert_eq!(f.recognise("**"), None);
        assert_eq!(f.recognise("102"), None);
        assert_eq!(f.recognise("*9"), None);
        assert_eq!(f.recognise("*97"), Some(Feature::Messages));
        assert_eq!(f.recognise("*971"), None, "the messages code is dialled as it is");
        assert_eq!(f.recognise("*70"), Some(Feature::Park));
        assert_eq!(f.recognise("*701"), None, "the park code is dialled as it is");
    }

    #[test]
    fn a_longer_directed_prefix_wins_over_a_shorter_intercom() {
        let f = FeatureCodes { pickup: "#1".into(), directed_pickup: "*55".into(), intercom: "*5".into(), messages: "#2".into(), park: "#3".into() };
        assert_eq!(f.recognise("*55102"), Some(Feature::DirectedPickup("102".into())));
        assert_eq!(f.recognise("*5102"), Some(Feature::Intercom("102".into())));
    }

    #[test]
    fn validation_names_the_field() {
        let ok = FeatureCodes::default();
        assert!(ok.validate(["101", "600"].into_iter()).is_ok());
        let e = ok.validate(["101", "*80102"].into_iter()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.intercom: `*80` clashes with the extension or group number `*80102`"), "{e}");
        let e = FeatureCodes { pickup: "600".into(), ..ok.clone() }.validate(["600"].into_iter()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.pickup: `600` clashes"), "{e}");
        let e = FeatureCodes { intercom: "*8a".into(), ..ok.clone() }.validate(std::iter::empty()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.intercom:"), "{e}");
        let e = FeatureCodes { intercom: "**".into(), ..ok.clone() }.validate(std::iter::empty()).unwrap_err().to_string();
        assert!(e.contains("is also feature_codes.directed_pickup"), "{e}");
        let e = FeatureCodes { messages: "*8".into(), ..ok.clone() }.validate(std::iter::empty()).unwrap_err().to_string();
        assert!(e.contains("feature_codes.messages: `*8` is also feature_codes.pickup"), "{e}");
        let e = FeatureCodes { messages: "600".into(), ..ok.clone() }.validate(["600"].into_iter()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.messages: `600` clashes"), "{e}");
        let e = FeatureCodes { park: "*97".into(), ..ok.clone() }.validate(std::iter::empty()).unwrap_err().to_string();
        assert!(e.contains("feature_codes.park: `*97` is also feature_codes.messages"), "{e}");
        let e = FeatureCodes { park: "700".into(), ..ok.clone() }.validate(["700"].into_iter()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.park: `700` clashes"), "{e}");
        let e = FeatureCodes { pickup: String::new(), ..ok }.validate(std::iter::empty()).unwrap_err().to_string();
        assert!(e.starts_with("feature_codes.pickup:"), "{e}");
    }
}
