//! The call history as CSV (RFC 4180), safe to open in a spreadsheet: a
//! cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is
//! prefixed with `'`, so a caller's number or name is never read as a
//! formula (CSV injection); a cell with a comma, quote or line break is
//! quoted, its quotes doubled. Lines end in CRLF.
use crate::storage::CallRecord;
use std::borrow::Cow;

/// The header row's names, in column order.
pub const COLUMNS: [&str; 9] = ["call_id", "caller", "callee", "started", "answered", "ended", "duration_s", "disposition", "end_reason"];

/// One cell, neutralised and quoted as needed.
pub fn cell(value: &str) -> Cow<'_, str> {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = value.contains([',', '"', '\r', '\n']);
    if !formula && !quote {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    if quote {
        out.push('"');
    }
    Cow::Owned(out)
}

/// One line: the cells joined by commas, ended by CRLF.
pub fn line<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(c));
    }
    out.push_str("\r\n");
}

/// Unix milliseconds as RFC 3339 UTC (`2026-12-04T15:47:05.123Z`); empty when absent.
fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()).map(|t| t.to_string()).unwrap_or_default()
}

/// The header row and one row per call.
pub fn calls(rows: &[CallRecord]) -> String {
    let mut out = String::with_capacity(64 + rows.len() * 160);
    line(&mut out, COLUMNS);
    for c in rows {
        let duration = match (c.answered_at, c.ended_at) {
            (Some(a), Some(e)) => format!("{:.1}", (e - a).max(0) as f64 / 1000.0),
            _ => String::new(),
        };
        let (started, answered, ended) = (time(Some(c.started_at)), time(c.answered_at), time(c.ended_at));
        let cells = [
            c.call_id.as_str(),
            &c.caller,
            &c.callee,
            &started,
            &answered,
            &ended,
            &duration,
            c.disposition.as_deref().unwrap_or(""),
            c.end_reason.as_deref().unwrap_or(""),
        ];
        line(&mut out, cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cells_are_left_alone() {
        assert_eq!(cell("110"), "110");
        assert_eq!(cell(""), "");
        assert_eq!(cell("Hall 1"), "Hall 1");
        assert_eq!(cell("a'b"), "a'b");
    }

    #[test]
    fn commas_quotes_and_line_breaks_are_quoted() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("cr\r"), "\"cr\r\"");
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("+4930123"), "'+4930123");
        assert_eq!(cell("-1+2"), "'-1+2");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\t=1"), "'\t=1");
        // a formula that also needs quoting: the quote comes first, the apostrophe inside it
        assert_eq!(cell("=HYPERLINK(\"http://x\",\"y\")"), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(cell("\r=1"), "\"'\r=1\"");
        // only the first character counts
        assert_eq!(cell("1=1"), "1=1");
    }

    #[test]
    fn a_call_row_has_every_column_in_order() {
        let rows = [
            CallRecord {
                call_id: "c1".into(),
                caller: "=cmd|' /C calc'!A0".into(),
                callee: "111".into(),
                started_at: 1_000,
                answered_at: Some(2_000),
                ended_at: Some(14_500),
                disposition: Some("answered".into()),
                end_reason: Some("caller_hangup".into()),
                seq: 1,
            },
            CallRecord { call_id: "c,2".into(), caller: "110".into(), callee: "112".into(), started_at: 0, answered_at: None, ended_at: None, disposition: None, end_reason: None, seq: 2 },
        ];
        let text = calls(&rows);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "call_id,caller,callee,started,answered,ended,duration_s,disposition,end_reason");
        assert_eq!(lines[1], "c1,'=cmd|' /C calc'!A0,111,1970-01-01T00:00:01Z,1970-01-01T00:00:02Z,1970-01-01T00:00:14.5Z,12.5,answered,caller_hangup");
        assert_eq!(lines[2], "\"c,2\",110,112,1970-01-01T00:00:00Z,,,,,");
        assert_eq!(lines[3], "", "the last line ends in CRLF too");
        assert_eq!(lines.len(), 4);
    }
}
