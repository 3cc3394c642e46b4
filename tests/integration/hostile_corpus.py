"""Broken and hostile SIP input for test_hostile.py.

corpus(host, port) returns (name, bytes) pairs; each is sent once over UDP and
once over a fresh TCP connection. None of it may crash or wedge the PBX.
(UDP cannot carry more than 65507 bytes over IPv4, so the "70 KB" case is cut
to that size for UDP and sent whole over TCP.)"""
from __future__ import annotations

import random

UDP_MAX = 65507


def _msg(start: str, headers: list[tuple[str, str]], body: bytes = b"",
         content_length: str | None = None) -> bytes:
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    cl = str(len(body)) if content_length is None else content_length
    return f"{start}\r\n{h}Content-Length: {cl}\r\n\r\n".encode("utf-8", "surrogateescape") + body


def corpus(host: str, port: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(20240611)  # deterministic
    uri = f"sip:102@{host}:{port}"
    via = f"SIP/2.0/UDP 127.0.0.3:5999;branch=z9hG4bK{rnd.getrandbits(48):x};rport"
    frm = "<sip:101@127.0.0.3>;tag=h1"
    to = f"<{uri}>"

    def base(method: str = "OPTIONS", drop: str | None = None, **repl: str) -> list[tuple[str, str]]:
        hs = [("Via", via), ("Max-Forwards", "70"), ("From", frm), ("To", to),
              ("Call-ID", f"hostile-{rnd.getrandbits(40):x}"), ("CSeq", f"1 {method}")]
        out = []
        for k, v in hs:
            if k == drop:
                continue
            out.append((k, repl.get(k.replace("-", "_").lower(), v)))
        return out

    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\n"
           b"m=audio 4000 RTP/AVP 0\r\n")
    cases: list[tuple[str, bytes]] = [
        ("random_bytes_small", rnd.randbytes(200)),
        ("random_bytes_1400", rnd.randbytes(1400)),
        ("random_printable", "".join(rnd.choice("abcdefXYZ:;<>@ \r\n=/") for _ in range(3000)).encode()),
        ("empty", b""),
        ("only_crlf", b"\r\n\r\n"),
        ("many_crlf", b"\r\n" * 600),
        ("truncated_start_line", f"INVITE {uri} SIP/".encode()),
        ("start_line_only", f"OPTIONS {uri} SIP/2.0\r\n\r\n".encode()),
        ("missing_via", _msg(f"OPTIONS {uri} SIP/2.0", base(drop="Via"))),
        ("missing_from", _msg(f"OPTIONS {uri} SIP/2.0", base(drop="From"))),
        ("missing_to", _msg(f"OPTIONS {uri} SIP/2.0", base(drop="To"))),
        ("missing_call_id", _msg(f"OPTIONS {uri} SIP/2.0", base(drop="Call-ID"))),
        ("missing_cseq", _msg(f"OPTIONS {uri} SIP/2.0", base(drop="CSeq"))),
        ("bad_cseq_text", _msg(f"OPTIONS {uri} SIP/2.0", base(cseq="abc OPTIONS"))),
        ("cseq_method_mismatch", _msg(f"INVITE {uri} SIP/2.0", base("INVITE", cseq="1 BYE"), sdp)),
        ("cseq_huge_number", _msg(f"OPTIONS {uri} SIP/2.0",
                                  base(cseq="99999999999999999999999999 OPTIONS"))),
        ("cseq_negative", _msg(f"OPTIONS {uri} SIP/2.0", base(cseq="-5 OPTIONS"))),
        ("content_length_larger_than_body",
         _msg(f"INVITE {uri} SIP/2.0", base("INVITE"), sdp, content_length="5000")),
        ("content_length_smaller_than_body",
         _msg(f"INVITE {uri} SIP/2.0", base("INVITE"), sdp, content_length="10")),
        ("content_length_negative", _msg(f"OPTIONS {uri} SIP/2.0", base(), b"x", content_length="-1")),
        ("content_length_not_a_number",
         _msg(f"OPTIONS {uri} SIP/2.0", base(), b"x", content_length="lots")),
        ("content_length_overflow",
         _msg(f"OPTIONS {uri} SIP/2.0", base(), b"x", content_length="184467440737095516160")),
        ("datagram_70k", _msg(f"MESSAGE {uri} SIP/2.0", base("MESSAGE") + [("Content-Type", "text/plain")],
                              b"A" * 70000)),
        ("header_line_10k", _msg(f"OPTIONS {uri} SIP/2.0", base() + [("X-Long", "b" * 10240)])),
        ("many_headers", _msg(f"OPTIONS {uri} SIP/2.0",
                              base() + [(f"X-H{i}", "v") for i in range(3000)])),
        ("nul_bytes_in_headers", _msg(f"OPTIONS {uri} SIP/2.0", base(**{"call_id": "abc\x00def",
                                                                        "from": "<sip:\x00@x>;tag=\x00"}))),
        ("nul_bytes_start_line", b"OPT\x00IONS sip:\x00 SIP/2.0\r\n\r\n"),
        ("invalid_request_uri", _msg("INVITE ::::not a uri:::: SIP/2.0", base("INVITE"), sdp)),
        ("invalid_from_uri", _msg(f"OPTIONS {uri} SIP/2.0", base(**{"from": "<sip:@@@:::>;tag=1"}))),
        ("invalid_to_uri", _msg(f"OPTIONS {uri} SIP/2.0", base(to="<<<>>>"))),
        ("unbalanced_angle_brackets", _msg(f"OPTIONS {uri} SIP/2.0", base(**{"from": "<sip:a@b;tag=1"}))),
        ("non_utf8_bytes", f"OPTIONS {uri} SIP/2.0\r\n".encode() +
         b"Via: SIP/2.0/UDP 127.0.0.3:5999;branch=z9hG4bK\xff\xfe\r\nFrom: \xc3\x28<sip:a@b>;tag=\xa0\r\n"
         b"To: <sip:\xe2\x82@x>\r\nCall-ID: \xf0\x28\x8c\xbc\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
        ("utf8_bom_prefix", b"\xef\xbb\xbf" + _msg(f"OPTIONS {uri} SIP/2.0", base())),
        ("unknown_method", _msg(f"FROBNICATE {uri} SIP/2.0", base("FROBNICATE"))),
        ("lowercase_method", _msg(f"options {uri} SIP/2.0", base("options"))),
        ("wrong_sip_version", _msg(f"OPTIONS {uri} SIP/3.0", base())),
        ("http_request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("response_to_nothing", _msg("SIP/2.0 200 OK", base("INVITE") + [("Contact", "<sip:x@127.0.0.3>")],
                                     sdp)),
        ("response_bad_status", _msg("SIP/2.0 99999 Whatever", base())),
        ("response_no_reason", b"SIP/2.0 180\r\n\r\n"),
        ("ack_to_nothing", _msg(f"ACK {uri} SIP/2.0", base("ACK"))),
        ("cancel_to_nothing", _msg(f"CANCEL {uri} SIP/2.0", base("CANCEL"))),
        ("bye_to_nothing", _msg(f"BYE {uri} SIP/2.0", base("BYE"))),
        ("via_garbage", _msg(f"OPTIONS {uri} SIP/2.0", base(via="SIP/2.0/UDP ;;;;;branch"))),
        ("via_bad_port", _msg(f"OPTIONS {uri} SIP/2.0",
                              base(via="SIP/2.0/UDP 127.0.0.3:999999;branch=z9hG4bKx"))),
        ("via_unknown_transport", _msg(f"OPTIONS {uri} SIP/2.0",
                                       base(via="SIP/2.0/CARRIERPIGEON 127.0.0.3;branch=z9hG4bKy"))),
        ("header_without_colon", f"OPTIONS {uri} SIP/2.0\r\nVia {via}\r\nThisHasNoColon\r\n\r\n".encode()),
        ("folded_header_lines", _msg(f"OPTIONS {uri} SIP/2.0",
                                     base() + [("Subject", "one\r\n  two\r\n\tthree")])),
        ("max_forwards_zero", _msg(f"OPTIONS {uri} SIP/2.0", base() + [("Max-Forwards", "0")])),
        ("max_forwards_garbage", _msg(f"OPTIONS {uri} SIP/2.0", base() + [("Max-Forwards", "-9x")])),
        ("invite_garbage_sdp", _msg(f"INVITE {uri} SIP/2.0", base("INVITE") +
                                    [("Content-Type", "application/sdp")],
                                    b"v=9\r\nm=audio notaport RTP/AVP zz\r\nc=IN IP4 999.1.1.1\r\n")),
        ("invite_garbage_auth", _msg(f"INVITE {uri} SIP/2.0", base("INVITE") +
                                     [("Proxy-Authorization", "Digest ,,,,=,=\"")], sdp)),
        ("register_garbage_auth", _msg(f"REGISTER sip:{host}:{port} SIP/2.0", base("REGISTER") +
                                       [("Authorization", "Digest username=\"101\", response=\"zz\", "
                                                          "nonce=, uri=\"\"")])),
        ("register_contact_garbage", _msg(f"REGISTER sip:{host}:{port} SIP/2.0", base("REGISTER") +
                                          [("Contact", "<<<sip:::>>>;expires=abc"), ("Expires", "-1")])),
        ("register_expires_huge", _msg(f"REGISTER sip:{host}:{port} SIP/2.0", base("REGISTER") +
                                       [("Contact", "<sip:101@127.0.0.3:5999>"),
                                        ("Expires", "99999999999999999999")])),
    ]
    return cases


def udp_payload(data: bytes) -> bytes:
    return data[:UDP_MAX]
