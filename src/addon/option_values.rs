//! Reading one option's JSON value, the same way for every section of the
//! options form: its kind in words for errors ("expected a number, found
//! text"), whole numbers given as numbers or as text, and lists the form
//! holds as one text. Sans-IO.
use anyhow::{bail, Result};
use serde_json::Value;

/// The value's kind in words.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A whole number, as a JSON number or as text; nothing, null or blank text
/// is `None`. `name` is how errors call the option.
pub(super) fn whole(name: &str, v: Option<&Value>) -> Result<Option<i64>> {
    let too_large = |t: &dyn std::fmt::Display| anyhow::anyhow!("{name}: {t} is too large");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Some(i)),
            None if n.is_u64() => Err(too_large(n)),
            None => bail!("{name}: `{n}` is not a whole number"),
        },
        Some(Value::String(s)) => {
            let t = s.trim();
            t.parse().map(Some).map_err(|_| if t.parse::<u64>().is_ok() { too_large(&t) } else { anyhow::anyhow!("{name}: `{s}` is not a whole number") })
        }
        Some(other) => bail!("{name}: expected a number, found {}", kind(other)),
    }
}

/// A whole number of 0 or more (see [`whole`]).
pub(super) fn count(name: &str, v: Option<&Value>) -> Result<Option<u64>> {
    match whole(name, v)? {
        Some(n) if n < 0 => bail!("{name}: `{n}` is not a whole number of 0 or more"),
        n => Ok(n.map(|n| n as u64)),
    }
}

/// The items of a list the form holds as one text, separated by commas,
/// semicolons or spaces; blanks are dropped.
pub(super) fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ' ', ';']).map(str::trim).filter(|i| !i.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_come_as_numbers_or_text() {
        assert_eq!(whole("n", Some(&json!(7))).unwrap(), Some(7));
        assert_eq!(whole("n", Some(&json!(" -3 "))).unwrap(), Some(-3));
        assert_eq!(whole("n", Some(&json!("  "))).unwrap(), None);
        assert_eq!(whole("n", None).unwrap(), None);
        assert_eq!(count("n", Some(&json!("12"))).unwrap(), Some(12));
        for (v, msg) in [
            (json!(1.5), "n: `1.5` is not a whole number"),
            (json!("abc"), "n: `abc` is not a whole number"),
            (json!(u64::MAX), "n: 18446744073709551615 is too large"),
            (json!("18446744073709551615"), "n: 18446744073709551615 is too large"),
            (json!(true), "n: expected a number, found true/false"),
        ] {
            assert_eq!(whole("n", Some(&v)).unwrap_err().to_string(), msg);
        }
        assert_eq!(count("n", Some(&json!(-1))).unwrap_err().to_string(), "n: `-1` is not a whole number of 0 or more");
    }

    #[test]
    fn a_list_in_one_text_splits_on_commas_semicolons_and_spaces() {
        assert_eq!(items(" a, b;c  d ,, ").collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(items("  ").count(), 0);
    }
}
