//! Call park (`park:`): the slot numbers a parked call waits on and how long
//! it waits before its parker is rung back. Off when the section is absent.
use anyhow::{bail, Result};
use serde::Deserialize;

/// The most slots `park.slots` may hold (the parked-call table's bound).
pub const MAX_PARK_SLOTS: u32 = 100;
/// `park.timeout_secs` bounds.
pub const PARK_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 5..=3600;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ParkConfig {
    /// `FIRST-LAST`, numbers of the same length: `701-709`.
    pub slots: String,
    /// Unretrieved this long, the call rings its parker back.
    pub timeout_secs: u64,
}

impl Default for ParkConfig {
    fn default() -> Self {
        ParkConfig { slots: "701-709".into(), timeout_secs: 120 }
    }
}

impl ParkConfig {
    /// The slot numbers, in order.
    pub fn slot_numbers(&self) -> Result<Vec<String>> {
        let s = self.slots.trim();
        let Some((a, b)) = s.split_once('-') else {
            bail!("park.slots: `{s}` is not a FIRST-LAST range such as 701-709");
        };
        let digits = |n: &str| !n.is_empty() && n.len() <= 8 && n.chars().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) || a.len() != b.len() {
            bail!("park.slots: `{s}` must be two numbers of the same length (1-8 digits), such as 701-709");
        }
        let (first, last): (u32, u32) = (a.parse()?, b.parse()?);
        if first > last {
            bail!("park.slots: `{s}`: FIRST must not be above LAST");
        }
        if last - first + 1 > MAX_PARK_SLOTS {
            bail!("park.slots: `{s}` holds {} slots, more than {MAX_PARK_SLOTS}", last - first + 1);
        }
        Ok((first..=last).map(|n| format!("{n:0width$}", width = a.len())).collect())
    }

    /// Slots well formed, the timeout in bounds, and no slot is an
    /// extension, group or agent number or a feature code.
    pub fn validate<'a>(&self, numbers: impl Iterator<Item = &'a str> + Clone, codes: &super::FeatureCodes) -> Result<()> {
        let slots = self.slot_numbers()?;
        if !PARK_TIMEOUT_SECS.contains(&self.timeout_secs) {
            bail!("park.timeout_secs: {} must be between {} and {}", self.timeout_secs, PARK_TIMEOUT_SECS.start(), PARK_TIMEOUT_SECS.end());
        }
        for slot in &slots {
            if let Some(n) = numbers.clone().find(|n| n == slot) {
                bail!("park.slots: slot `{slot}` clashes with the extension or group number `{n}`");
            }
            if codes.validate(std::iter::once(slot.as_str())).is_err() {
                bail!("park.slots: slot `{slot}` clashes with a feature code");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_a_bounded_range_of_same_length_numbers() {
        assert_eq!(ParkConfig::default().slot_numbers().unwrap(), (701..=709).map(|n| n.to_string()).collect::<Vec<_>>());
        let p = |s: &str| ParkConfig { slots: s.into(), timeout_secs: 120 };
        assert_eq!(p("08-10").slot_numbers().unwrap(), ["08", "09", "10"]);
        for (bad, says) in [("701", "not a FIRST-LAST"), ("7a1-709", "same length"), ("701-70", "same length"), ("709-701", "must not be above"), ("100-300", "more than 100")] {
            let e = p(bad).slot_numbers().unwrap_err().to_string();
            assert!(e.starts_with("park.slots:") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn validation_names_the_field_and_the_clash() {
        let codes = crate::config::FeatureCodes::default();
        let ok = ParkConfig::default();
        assert!(ok.validate(["101", "600"].into_iter(), &codes).is_ok());
        let e = ok.validate(["101", "705"].into_iter(), &codes).unwrap_err().to_string();
        assert_eq!(e, "park.slots: slot `705` clashes with the extension or group number `705`");
        let e = ParkConfig { timeout_secs: 1, ..ok.clone() }.validate(std::iter::empty(), &codes).unwrap_err().to_string();
        assert!(e.starts_with("park.timeout_secs: 1 must be between 5 and 3600"), "{e}");
        // A numeric feature code among the slots.
        let codes = crate::config::FeatureCodes { pickup: "703".into(), ..codes };
        let e = ok.validate(std::iter::empty(), &codes).unwrap_err().to_string();
        assert_eq!(e, "park.slots: slot `703` clashes with a feature code");
    }
}
