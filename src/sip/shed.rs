//! Load shedding before parsing (sans-IO).
//!
//! Messages a transport reads wait in rsipstack's transport → endpoint
//! channel, which has no bound: when the PBX is offered more than its cores
//! process, every datagram read is parsed and queued, the queue and the
//! transactions behind it grow until memory runs out, and the requests that
//! finish work (ACK, BYE, responses) wait behind the ones that start it. Here
//! the queue's length (`TransportLayer::incoming_backlog`, rsipstack patch
//! 10) decides, from a message's first bytes, before it is parsed:
//! - below [`Watermarks::refuse_new`] everything passes;
//! - above it a request that starts new work (out of any dialog, not an ACK
//!   or CANCEL) gets `503 Service Unavailable` with `Retry-After`, made from
//!   its raw headers (RFC 3261 21.5.4; a UDP client stops retransmitting);
//! - above [`Watermarks::drop_new`] such a request is dropped unanswered
//!   over UDP (answering costs too, and its retransmission comes back when the
//!   queue may be shorter), still refused over TCP and TLS, which do not
//!   retransmit;
//! - above [`Watermarks::drop_all`] a datagram is dropped whatever it is, as
//!   a full socket buffer would: the queue's memory has a ceiling.
//!
//! Responses and in-dialog requests pass up to that ceiling: they end work
//! the PBX has already taken on.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Queue lengths at which shedding starts, per kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub refuse_new: usize,
    pub drop_new: usize,
    pub drop_all: usize,
}

/// Set from `bench/register_rate.py`: at 15,000 REGISTERs/s (401 and 200,
/// so 30,000 messages/s) a PBX that keeps up queues a few hundred now and
/// then, and with a first mark of 1,024 a machine busy with something else
/// for a moment got 503s there where it would have caught up (0.5 s of
/// work queued is where a UDP client retransmits, doubling the load). A
/// parsed message is 2–4 KiB: 32,768 queued is under 128 MiB, the ceiling.
pub const WATERMARKS: Watermarks = Watermarks { refuse_new: 8_192, drop_new: 16_384, drop_all: 32_768 };

/// Seconds a refused client is asked to wait.
pub const RETRY_AFTER_SECS: u32 = 5;

/// What a message is, as far as shedding cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A response, or a request that ends or continues work already taken
    /// on: ACK, CANCEL, BYE, PRACK, and any request with a To tag.
    Finishing,
    /// A request out of any dialog: INVITE, REGISTER, OPTIONS, SUBSCRIBE ...
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Answer 503 with `Retry-After`.
    Refuse,
    Drop,
}

/// The kind of the raw message `data` (unparsed: only its first line and To
/// header are read). Anything that is not a request line reads as
/// `Finishing`: the parser behind decides what it is.
pub fn kind(data: &[u8]) -> Kind {
    let head_end = find(data, b"\r\n\r\n").unwrap_or(data.len());
    let head = &data[..head_end];
    let line_end = find(head, b"\r\n").unwrap_or(head.len());
    let line = &head[..line_end];
    if line.starts_with(b"SIP/") {
        return Kind::Finishing;
    }
    let method = line.split(|&b| b == b' ').next().unwrap_or_default();
    if matches!(method, b"ACK" | b"CANCEL" | b"BYE" | b"PRACK") {
        return Kind::Finishing;
    }
    if head[line_end..].split(|&b| b == b'\n').any(to_with_tag) { Kind::Finishing } else { Kind::New }
}

/// Whether `line` is a To header (`To:` or compact `t:`) with a tag parameter.
fn to_with_tag(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else { return false };
    let name = line[..colon].trim_ascii();
    if !(name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t")) {
        return false;
    }
    let value = &line[colon + 1..];
    // parameters after the URI: after '>' when there is one
    let params = value.iter().rposition(|&b| b == b'>').map_or(value, |i| &value[i + 1..]);
    params.split(|&b| b == b';').skip(1).any(|p| {
        // `tag = x` too: RFC 3261 25.1 allows whitespace around `=`
        let p = p.trim_ascii();
        p.len() >= 3 && p[..3].eq_ignore_ascii_case(b"tag") && p[3..].trim_ascii_start().starts_with(b"=")
    })
}

/// What to do with a message of `kind` while `backlog` messages wait;
/// `reliable`: it came over TCP or TLS, whose sender does not retransmit.
pub fn verdict(backlog: usize, kind: Kind, reliable: bool, marks: Watermarks) -> Verdict {
    if backlog >= marks.drop_all && !reliable {
        return Verdict::Drop;
    }
    match kind {
        Kind::Finishing => Verdict::Pass,
        Kind::New if backlog >= marks.drop_new && !reliable => Verdict::Drop,
        Kind::New if backlog >= marks.refuse_new => Verdict::Refuse,
        Kind::New => Verdict::Pass,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Counts what was shed, for a log line at most every `every` and for
/// `/health` (sans-IO: the caller passes the time).
#[derive(Debug, Default)]
pub struct ShedCounter {
    pub refused: u64,
    pub dropped: u64,
    reported: (u64, u64),
    last_report: Option<Instant>,
}

impl ShedCounter {
    pub fn count(&mut self, v: Verdict) {
        match v {
            Verdict::Refuse => self.refused += 1,
            Verdict::Drop => self.dropped += 1,
            Verdict::Pass => {}
        }
    }

    /// `(refused, dropped)` since the last report, when one is due.
    pub fn report(&mut self, now: Instant, every: Duration) -> Option<(u64, u64)> {
        if self.last_report.is_some_and(|t| now.duration_since(t) < every) {
            return None;
        }
        let since = (self.refused - self.reported.0, self.dropped - self.reported.1);
        if since == (0, 0) {
            return None;
        }
        self.reported = (self.refused, self.dropped);
        self.last_report = Some(now);
        Some(since)
    }
}

/// The shedding the SIP transports share: the queue's gauge, the marks and
/// what was shed (for the log and `/health`).
pub struct Shedder {
    backlog: Arc<AtomicUsize>,
    marks: Watermarks,
    counter: Mutex<ShedCounter>,
}

/// How often the log says what was shed.
const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Shedder {
    pub fn new(backlog: Arc<AtomicUsize>, marks: Watermarks) -> Self {
        Shedder { backlog, marks, counter: Mutex::new(ShedCounter::default()) }
    }

    /// The verdict on the raw message `data`, counted. Below the first mark
    /// the message is not even looked at.
    pub fn judge(&self, data: &[u8], reliable: bool) -> Verdict {
        let backlog = self.backlog.load(Ordering::Relaxed);
        if backlog < self.marks.refuse_new.min(self.marks.drop_all) {
            return Verdict::Pass;
        }
        let v = verdict(backlog, kind(data), reliable, self.marks);
        if v != Verdict::Pass
            && let Ok(mut c) = self.counter.lock()
        {
            c.count(v);
            if let Some((refused, dropped)) = c.report(Instant::now(), REPORT_EVERY) {
                tracing::warn!(backlog, refused, dropped, "SIP overload: messages wait for the SIP stack; new requests refused with 503 or dropped (counts since the last report)");
            }
        }
        v
    }

    /// Messages waiting now, and `(refused, dropped)` since the start.
    pub fn figures(&self) -> (usize, u64, u64) {
        let (refused, dropped) = self.counter.lock().map(|c| (c.refused, c.dropped)).unwrap_or_default();
        (self.backlog.load(Ordering::Relaxed), refused, dropped)
    }
}

/// `503 Service Unavailable` with `Retry-After` to the raw request `data`
/// (`None`: not a request that can be answered).
pub fn refusal(data: &[u8], to_tag: &str) -> Option<Vec<u8>> {
    let mut reply = super::stateless::reply_to_raw(data, 503, "Service Unavailable", to_tag)?;
    let end = b"Content-Length: 0\r\n\r\n";
    let at = reply.len().checked_sub(end.len()).filter(|&at| &reply[at..] == end)?;
    let retry = format!("Retry-After: {RETRY_AFTER_SECS}\r\n");
    reply.splice(at..at, retry.into_bytes());
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str, to: &str) -> Vec<u8> {
        format!("{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n{to}\r\nCall-ID: c\r\nCSeq: 1 X\r\nContent-Length: 0\r\n\r\n")
            .into_bytes()
    }

    #[test]
    fn new_work_is_a_request_outside_any_dialog() {
        for line in ["INVITE sip:100@h SIP/2.0", "REGISTER sip:h SIP/2.0", "OPTIONS sip:h SIP/2.0", "SUBSCRIBE sip:100@h SIP/2.0", "FOO sip:h SIP/2.0"] {
            assert_eq!(kind(&req(line, "To: <sip:100@h>")), Kind::New, "{line}");
            // a tag in the To URI's own parameters is not the header's tag
            assert_eq!(kind(&req(line, "To: <sip:100@h;tag=x>")), Kind::New, "{line}");
        }
        for to in ["To: <sip:100@h>;tag=abc", "t: sip:100@h;TAG=abc", "TO : \"x\" <sip:100@h> ; tag = abc"] {
            assert_eq!(kind(&req("INVITE sip:100@h SIP/2.0", to)), Kind::Finishing, "{to}");
        }
        for line in ["ACK sip:100@h SIP/2.0", "CANCEL sip:100@h SIP/2.0", "BYE sip:100@h SIP/2.0", "PRACK sip:100@h SIP/2.0", "SIP/2.0 200 OK"] {
            assert_eq!(kind(&req(line, "To: <sip:100@h>")), Kind::Finishing, "{line}");
        }
        // a To tag in the body is not the header's
        let mut body = req("INVITE sip:100@h SIP/2.0", "To: <sip:100@h>");
        body.extend_from_slice(b"To: <sip:x@h>;tag=1\r\n");
        assert_eq!(kind(&body), Kind::New);
        // garbage goes on to the parser, which refuses it
        assert_eq!(kind(b""), Kind::New);
        assert_eq!(kind(b"\x00\xff"), Kind::New);
    }

    #[test]
    fn new_work_is_refused_then_dropped_and_everything_at_the_ceiling() {
        let m = Watermarks { refuse_new: 10, drop_new: 20, drop_all: 30 };
        let at = |backlog, kind, reliable| verdict(backlog, kind, reliable, m);
        for (backlog, new_udp, new_tcp, fin_udp, fin_tcp) in [
            (0, Verdict::Pass, Verdict::Pass, Verdict::Pass, Verdict::Pass),
            (9, Verdict::Pass, Verdict::Pass, Verdict::Pass, Verdict::Pass),
            (10, Verdict::Refuse, Verdict::Refuse, Verdict::Pass, Verdict::Pass),
            (20, Verdict::Drop, Verdict::Refuse, Verdict::Pass, Verdict::Pass),
            (30, Verdict::Drop, Verdict::Refuse, Verdict::Drop, Verdict::Pass),
        ] {
            assert_eq!(at(backlog, Kind::New, false), new_udp, "new over UDP at {backlog}");
            assert_eq!(at(backlog, Kind::New, true), new_tcp, "new over TCP at {backlog}");
            assert_eq!(at(backlog, Kind::Finishing, false), fin_udp, "finishing over UDP at {backlog}");
            assert_eq!(at(backlog, Kind::Finishing, true), fin_tcp, "finishing over TCP at {backlog}");
        }
    }

    #[test]
    fn the_log_says_what_was_shed_since_it_last_spoke_at_most_every_period() {
        let mut c = ShedCounter::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(10);
        assert_eq!(c.report(t0, every), None, "nothing shed, nothing said");
        c.count(Verdict::Refuse);
        c.count(Verdict::Drop);
        c.count(Verdict::Drop);
        c.count(Verdict::Pass);
        assert_eq!(c.report(t0, every), Some((1, 2)));
        c.count(Verdict::Refuse);
        assert_eq!(c.report(t0 + Duration::from_secs(9), every), None, "too soon");
        assert_eq!(c.report(t0 + Duration::from_secs(10), every), Some((1, 0)));
        assert_eq!((c.refused, c.dropped), (2, 2));
    }

    #[test]
    fn the_shedder_reads_the_queue_and_counts() {
        let gauge = Arc::new(AtomicUsize::new(0));
        let shed = Shedder::new(gauge.clone(), Watermarks { refuse_new: 10, drop_new: 20, drop_all: 30 });
        let invite = req("INVITE sip:100@h SIP/2.0", "To: <sip:100@h>");
        let bye = req("BYE sip:100@h SIP/2.0", "To: <sip:100@h>;tag=b");
        assert_eq!(shed.judge(&invite, false), Verdict::Pass);
        gauge.store(10, Ordering::Relaxed);
        assert_eq!(shed.judge(&invite, false), Verdict::Refuse);
        assert_eq!(shed.judge(&bye, false), Verdict::Pass);
        gauge.store(25, Ordering::Relaxed);
        assert_eq!(shed.judge(&invite, false), Verdict::Drop);
        assert_eq!(shed.judge(&invite, true), Verdict::Refuse);
        assert_eq!(shed.figures(), (25, 2, 1));
    }

    #[test]
    fn a_refusal_is_a_503_that_says_when_to_come_back() {
        let invite = req("INVITE sip:100@h SIP/2.0", "To: <sip:100@h>");
        let reply = String::from_utf8(refusal(&invite, "t1").unwrap()).unwrap();
        assert!(reply.starts_with("SIP/2.0 503 Service Unavailable\r\n"), "{reply}");
        assert!(reply.contains("\r\nTo: <sip:100@h>;tag=t1\r\n"), "{reply}");
        assert!(reply.contains("\r\nCall-ID: c\r\n"), "{reply}");
        assert!(reply.ends_with("\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"), "{reply}");
        // an ACK is never answered, garbage cannot be
        assert_eq!(refusal(&req("ACK sip:100@h SIP/2.0", "To: <sip:100@h>"), "t"), None);
        assert_eq!(refusal(b"\x00\x01", "t"), None);
    }
}
