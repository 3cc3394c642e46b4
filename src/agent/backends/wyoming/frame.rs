//! Wyoming framing, sans-IO: a JSON header line
//! `{"type", "data"?, "data_length"?, "payload_length"?}\n`, then
//! `data_length` bytes of JSON (merged over the header's `data`), then
//! `payload_length` bytes of payload (PCM for audio events).
use serde_json::{Map, Value};

/// A header line longer than this is not Wyoming.
pub const MAX_HEADER: usize = 64 * 1024;
pub const MAX_DATA: usize = 1024 * 1024;
/// One audio chunk; servers send a few kB.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    /// `data` should be a JSON object; anything else counts as no data.
    pub fn new(kind: &str, data: Value) -> Event {
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Event { kind: kind.to_string(), data, payload: Vec::new() }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Event {
        self.payload = payload;
        self
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct FrameError(pub String);

/// The bytes of one event, data after the header as the wyoming library
/// writes it.
pub fn encode(ev: &Event) -> Vec<u8> {
    let data = if ev.data.is_empty() { Vec::new() } else { serde_json::to_vec(&ev.data).unwrap_or_default() };
    let mut header = Map::new();
    header.insert("type".into(), Value::from(ev.kind.as_str()));
    if !data.is_empty() {
        header.insert("data_length".into(), Value::from(data.len()));
    }
    if !ev.payload.is_empty() {
        header.insert("payload_length".into(), Value::from(ev.payload.len()));
    }
    let mut out = serde_json::to_vec(&header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(&data);
    out.extend_from_slice(&ev.payload);
    out
}

#[derive(Debug)]
struct Header {
    /// Bytes of the line, newline included.
    len: usize,
    kind: String,
    data: Map<String, Value>,
    data_len: usize,
    payload_len: usize,
}

/// Feed bytes with `push`, take events with `next_event`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    header: Option<Header>,
    /// How much of `buf` is known to hold no newline (a header line that
    /// arrives a byte at a time is scanned once, not once per byte).
    scanned: usize,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True when bytes of an unfinished event are held (EOF now would cut it).
    pub fn in_event(&self) -> bool {
        !self.buf.is_empty() || self.header.is_some()
    }

    /// The next whole event, `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Result<Option<Event>, FrameError> {
        if self.header.is_none() {
            let Some(nl) = self.buf[self.scanned..].iter().position(|&b| b == b'\n').map(|i| self.scanned + i) else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_HEADER {
                    return Err(FrameError(format!("header line longer than {MAX_HEADER} bytes")));
                }
                return Ok(None);
            };
            if nl > MAX_HEADER {
                return Err(FrameError(format!("header line longer than {MAX_HEADER} bytes")));
            }
            self.header = Some(parse_header(&self.buf[..nl], nl + 1)?);
        }
        let h = self.header.as_ref().expect("set above");
        let total = h.len + h.data_len + h.payload_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let h = self.header.take().expect("set above");
        let mut data = h.data;
        if h.data_len > 0 {
            let extra: Value = serde_json::from_slice(&self.buf[h.len..h.len + h.data_len])
                .map_err(|e| FrameError(format!("`{}` data is not JSON: {e}", h.kind)))?;
            let Value::Object(extra) = extra else {
                return Err(FrameError(format!("`{}` data is not a JSON object", h.kind)));
            };
            data.extend(extra);
        }
        let payload = self.buf[h.len + h.data_len..total].to_vec();
        self.buf.drain(..total);
        self.scanned = 0;
        Ok(Some(Event { kind: h.kind, data, payload }))
    }
}

fn parse_header(line: &[u8], len: usize) -> Result<Header, FrameError> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        FrameError(format!("header is not JSON ({e}): {shown:?}"))
    })?;
    let Value::Object(mut h) = v else {
        return Err(FrameError("header is not a JSON object".into()));
    };
    let Some(Value::String(kind)) = h.remove("type") else {
        return Err(FrameError("header has no `type`".into()));
    };
    let data = match h.remove("data") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(FrameError(format!("`{kind}`: `data` is not an object"))),
    };
    let length = |key: &str, max: usize| -> Result<usize, FrameError> {
        match h.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => match v.as_u64() {
                Some(n) if n as usize <= max => Ok(n as usize),
                Some(n) => Err(FrameError(format!("`{kind}`: {key} {n} exceeds {max}"))),
                None => Err(FrameError(format!("`{kind}`: {key} is not a number"))),
            },
        }
    };
    let data_len = length("data_length", MAX_DATA)?;
    let payload_len = length("payload_length", MAX_PAYLOAD)?;
    Ok(Header { len, kind, data, data_len, payload_len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(bytes: &[u8], step: usize) -> Vec<Event> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(step) {
            d.push(piece);
            while let Some(ev) = d.next_event().unwrap() {
                out.push(ev);
            }
        }
        assert!(!d.in_event());
        out
    }

    #[test]
    fn encodes_like_the_wyoming_library() {
        let ev = Event::new("audio-chunk", json!({"rate": 16000, "width": 2, "channels": 1})).with_payload(vec![1, 2, 3, 4]);
        let bytes = encode(&ev);
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        let header: Value = serde_json::from_slice(&bytes[..nl]).unwrap();
        let data = br#"{"channels":1,"rate":16000,"width":2}"#;
        assert_eq!(header, json!({"type": "audio-chunk", "data_length": data.len(), "payload_length": 4}));
        assert_eq!(&bytes[nl + 1..nl + 1 + data.len()], data);
        assert_eq!(&bytes[nl + 1 + data.len()..], &[1, 2, 3, 4]);
        // no data, no payload: the header alone
        assert_eq!(encode(&Event::new("audio-stop", json!({}))), b"{\"type\":\"audio-stop\"}\n");
    }

    #[test]
    fn round_trips_at_any_split() {
        let evs = vec![
            Event::new("transcribe", json!({"language": "en"})),
            Event::new("audio-start", json!({"rate": 16000, "width": 2, "channels": 1})),
            Event::new("audio-chunk", json!({"rate": 16000, "width": 2, "channels": 1})).with_payload((0..=255).collect()),
            Event::new("audio-stop", json!({})),
        ];
        let bytes: Vec<u8> = evs.iter().flat_map(encode).collect();
        for step in [1, 2, 7, 64, bytes.len()] {
            assert_eq!(decode_all(&bytes, step), evs, "split every {step}");
        }
    }

    #[test]
    fn decodes_inline_data_and_merges_data_length() {
        // the older style (and the peers' Python script): data inside the header
        let raw = b"{\"type\": \"transcript\", \"data\": {\"text\": \"hi\"}}\n";
        assert_eq!(decode_all(raw, 5)[0].str("text"), Some("hi"));
        // both: the data block wins over the header's data
        let mut raw = br#"{"type":"audio-start","data":{"rate":1,"width":2},"data_length":11,"version":"1.5.2"}"#.to_vec();
        raw.push(b'\n');
        raw.extend_from_slice(br#"{"rate":22}"#);
        let ev = &decode_all(&raw, 3)[0];
        assert_eq!((ev.u64("rate"), ev.u64("width")), (Some(22), Some(2)));
        // a null payload_length as some servers send
        let ev = &decode_all(b"{\"type\":\"x\",\"payload_length\":null}\n", 100)[0];
        assert!(ev.payload.is_empty());
    }

    #[test]
    fn waits_for_the_whole_event() {
        let bytes = encode(&Event::new("audio-chunk", json!({"rate": 22050})).with_payload(vec![9; 100]));
        let mut d = Decoder::new();
        d.push(&bytes[..bytes.len() - 1]);
        assert_eq!(d.next_event().unwrap(), None);
        assert!(d.in_event());
        d.push(&bytes[bytes.len() - 1..]);
        assert_eq!(d.next_event().unwrap().unwrap().payload, vec![9; 100]);
        assert_eq!(d.next_event().unwrap(), None);
    }

    #[test]
    fn refuses_what_is_not_wyoming() {
        let bad: [&[u8]; 6] = [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"[1,2]\n",
            b"{\"data\":{}}\n",
            b"{\"type\":\"x\",\"payload_length\":-1}\n",
            b"{\"type\":\"x\",\"payload_length\":99999999999}\n",
            b"{\"type\":\"x\",\"data_length\":2}\n[]",
        ];
        for raw in bad {
            let mut d = Decoder::new();
            d.push(raw);
            assert!(d.next_event().is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        let mut d = Decoder::new();
        d.push(&vec![b'{'; MAX_HEADER + 1]);
        assert!(d.next_event().is_err());
    }
}
