//! Server-sent events, sans-IO: push body bytes, get each event's data
//! (`data:` lines joined by `\n`). Comments, `event:`, `id:` and `retry:`
//! carry nothing chat completions need.

/// A line longer than this is not an SSE stream we can use.
pub const MAX_LINE: usize = 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// The data of the events completed by `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let mut line = &self.buf[start..start + pos];
            start += pos + 1;
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            let line = std::str::from_utf8(line).map_err(|_| "event stream is not UTF-8".to_string())?;
            if line.is_empty() {
                if let Some(d) = self.data.take() {
                    events.push(d);
                }
                continue;
            }
            let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
            if field == "data" {
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(format!("event stream line longer than {MAX_LINE} bytes"));
        }
        Ok(events)
    }

    /// At the end of the body: an event not closed by a blank line.
    pub fn finish(&mut self) -> Option<String> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let _ = self.push(&rest);
            let _ = self.push(b"\n");
        }
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_at_any_split() {
        let stream = b": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\r\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata:[DONE]\n\n";
        for step in [1, 3, 10, stream.len()] {
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for piece in stream.chunks(step) {
                got.extend(p.push(piece).unwrap());
            }
            assert_eq!(got, vec!["{\"a\":1}", "{\"b\":\n2}", "[DONE]"], "split every {step}");
            assert_eq!(p.finish(), None);
        }
    }

    #[test]
    fn unterminated_last_event_and_bad_input() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(p.finish().as_deref(), Some("[DONE]"));
        assert!(SseParser::new().push(b"data: \xff\xfe\n").is_err());
        assert!(SseParser::new().push(&vec![b'x'; MAX_LINE + 1]).is_err());
    }
}
