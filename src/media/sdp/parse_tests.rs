use super::*;

const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.168.1.20\r\n\
s=-\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

#[test]
fn round_trips_crlf_exactly() {
    let sdp = Sdp::parse(OFFER).unwrap();
    assert_eq!(sdp.to_string(), OFFER);
}

#[test]
fn accepts_bare_lf_and_trailing_blanks_and_emits_crlf() {
    let sloppy = OFFER.replace("\r\n", "  \n") + "\n\n";
    let sdp = Sdp::parse(&sloppy).unwrap();
    assert_eq!(sdp.to_string(), OFFER);
}

#[test]
fn splits_session_and_media_sections() {
    let sdp = Sdp::parse(OFFER).unwrap();
    assert_eq!(sdp.media_count(), 1);
    assert_eq!(sdp.session.len(), 5);
    assert_eq!(sdp.media[0].len(), 7);
}

fn bad_line(text: &str) -> (usize, &'static str) {
    match Sdp::parse(text) {
        Err(SdpError::BadLine { line, reason, .. }) => (line, reason),
        other => panic!("expected BadLine, got {other:?}"),
    }
}

#[test]
fn names_the_bad_line() {
    let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nthis is not sdp\r\n";
    assert_eq!(bad_line(text), (4, "expected <letter>=<value>"));
    let err = Sdp::parse(text).unwrap_err().to_string();
    assert!(err.contains("line 4") && err.contains("this is not sdp"), "{err}");
}

#[test]
fn line_numbers_count_blank_lines() {
    assert_eq!(bad_line("v=0\n\n\nm=audio\n").0, 4);
}

#[test]
fn refuses_malformed_media_and_connection_lines() {
    assert_eq!(bad_line("v=0\r\nm=audio 70000 RTP/AVP 0\r\n").1, "m= port is not a number 0-65535");
    assert_eq!(bad_line("v=0\r\nm=audio 4000\r\n").1, "m= needs media, port and protocol");
    assert_eq!(bad_line("v=0\r\nm=audio 4000/x RTP/AVP 0\r\n").1, "m= port count is not a number");
    assert_eq!(bad_line("v=0\r\nc=IN IP4\r\n").1, "c= needs network type, address type and address");
}

#[test]
fn must_start_with_version_zero() {
    assert_eq!(bad_line("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n").1, "SDP must start with v=");
    assert_eq!(bad_line("v=1\r\n").1, "only SDP version 0 is known");
}

#[test]
fn refuses_control_characters_inside_a_line() {
    assert_eq!(bad_line("v=0\r\ns=a\rb=c\r\n").1, "control character inside the line");
    assert_eq!(bad_line("v=0\r\ns=a\0\r\n").1, "control character inside the line");
}

#[test]
fn refuses_empty_input() {
    assert_eq!(Sdp::parse(""), Err(SdpError::Empty));
    assert_eq!(Sdp::parse(" \r\n\n"), Err(SdpError::Empty));
}

#[test]
fn enforces_size_line_and_media_limits() {
    let big = format!("v=0\r\ns={}\r\n", "x".repeat(MAX_BYTES));
    assert!(matches!(Sdp::parse(&big), Err(SdpError::TooLarge { .. })));
    let many_lines = format!("v=0\n{}", "a=x\n".repeat(MAX_LINES));
    assert_eq!(Sdp::parse(&many_lines), Err(SdpError::TooManyLines { limit: MAX_LINES }));
    let many_media = format!("v=0\n{}", "m=audio 0 RTP/AVP 0\n".repeat(MAX_MEDIA + 1));
    assert_eq!(Sdp::parse(&many_media), Err(SdpError::TooManyMedia { limit: MAX_MEDIA }));
}

#[test]
fn long_bad_line_is_quoted_in_part_without_splitting_characters() {
    let text = format!("v=0\r\n{}\r\n", "é".repeat(200));
    let Err(SdpError::BadLine { text, .. }) = Sdp::parse(&text) else { panic!() };
    assert!(text.chars().count() <= 61 && text.ends_with('…'));
}

/// Deterministic xorshift so the test needs no extra crate and never flakes.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const SEEDS: &[&str] = &[
    OFFER,
    "v=0\nc=IN IP6 ::1\nm=audio 65535/2 RTP/SAVPF 96 101\na=rtcp:65535 IN IP4 0.0.0.0\na=rtcp-mux\n\
     a=candidate:1 1 UDP 1 ::1 9 typ host\nm=video 0 RTP/AVP 97\na=inactive\n",
];

#[test]
fn never_panics_on_mangled_input() {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let alphabet: Vec<char> =
        "v=0mcoa:/ \r\n\tIN IP4 IP6 1.2.3.4 ::1 audio RTP/AVP 65535 rtcp é\u{0}".chars().collect();
    let mut parsed = 0;
    for round in 0..20_000 {
        // Small edits of real SDP reach deep paths; random bytes rarely parse.
        let mut text: Vec<char> = SEEDS[round % SEEDS.len()].chars().collect();
        for _ in 0..1 + noise.next() % 4 {
            let at = (noise.next() % (text.len() as u64 + 1)) as usize;
            let c = alphabet[(noise.next() % alphabet.len() as u64) as usize];
            match noise.next() % 3 {
                0 if at < text.len() => text[at] = c,
                1 if at < text.len() => {
                    text.remove(at);
                }
                _ => text.insert(at, c),
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(mut sdp) = Sdp::parse(&text) {
            parsed += 1;
            // Everything reachable from a parsed SDP must be panic-free too.
            for i in 0..sdp.media_count() + 1 {
                let _ = (sdp.media_endpoint(i), sdp.is_hold(i), sdp.media_port(i));
                if let Some(m) = sdp.media(i) {
                    let _ = (m.kind(), m.proto(), m.payload_types(), m.rtcp(), m.direction(), m.rtpmap(0), m.fmtp(101));
                }
            }
            let _ = sdp.telephone_event_pt();
            sdp.rewrite_for_relay("10.0.0.1".parse().unwrap(), &[Some(20000), Some(65534)]);
            sdp.retain_payloads(0, |pt| pt % 2 == 0);
            Sdp::parse(&sdp.to_string()).expect("our own output parses");
        }
    }
    assert!(parsed > 5_000, "only {parsed} mutants parsed: the test explores too little");
}
