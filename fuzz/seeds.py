#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from the project's own
material: RFC 4475's torture messages (tests/rfc4475), the SIP messages of
the sipp scenarios, the browser SDP of the WebRTC tests, and small
hand-made inputs for the binary targets. Run again after adding material;
files are named by content hash, so nothing is duplicated."""
import glob, hashlib, json, os, re, struct
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C = os.path.join(ROOT, "fuzz", "corpus")

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb").write(data)

def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")

# SIP: RFC 4475 and the sipp scenarios (their [field]s filled in).
sip = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ROOT, "tests/rfc4475/*.sip")))]
fill = {"service": "101", "remote_ip": "127.0.0.1", "remote_port": "5060", "local_ip": "127.0.0.1",
        "local_port": "5070", "transport": "UDP", "branch": "z9hG4bK-1-1-0", "call_number": "1",
        "call_id": "1-1@127.0.0.1", "cseq": "1", "pid": "1", "media_ip_type": "4", "media_ip": "127.0.0.1",
        "media_port": "6000", "auto_media_port": "6000", "peer_tag_param": ";tag=peer1", "last_Via:": "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
        "last_From:": "From: <sip:101@127.0.0.1>;tag=1", "last_To:": "To: <sip:102@127.0.0.1>;tag=2", "last_Call-ID:": "Call-ID: 1-1@127.0.0.1",
        "last_CSeq:": "CSeq: 1 INVITE", "authentication": 'Authorization: Digest username="101",realm="ha-pbx",nonce="abc",uri="sip:127.0.0.1",response="00112233445566778899aabbccddeeff",algorithm=MD5'}
for p in sorted(glob.glob(os.path.join(ROOT, "tests/integration/sipp/*.xml"))) + sorted(glob.glob(os.path.join(ROOT, "tests/integration/sipp/*.in"))):
    for m in re.findall(r"<!\[CDATA\[(.*?)\]\]>", open(p).read(), re.S):
        text = m.strip("\n").strip() + "\n\n"
        if not re.match(r"^[A-Z]+ |^SIP/2\.0", text):
            continue
        text = re.sub(r"\[([^\]]+)\]", lambda g: fill.get(g.group(1), "x"), text)
        head, _, body = text.partition("\n\n")
        body = body.rstrip("\n") + ("\n" if body.strip() else "")
        msg = crlf(head).rstrip("\r\n") + "\r\n\r\n" + crlf(body)
        msg = re.sub(r"Content-Length: *x", "Content-Length: %d" % len(crlf(body).encode()), msg)
        sip.append(msg.encode())
jssip = crlf("""REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/WSS 4fk2a1s0pq7j.invalid;branch=z9hG4bK9313186
Max-Forwards: 69
To: <sip:2001@127.0.0.1>
From: <sip:2001@127.0.0.1>;tag=bfp0jhqbqb
Call-ID: 3tmpm6ijr0fmo6m7ddv8g1
CSeq: 1 REGISTER
Contact: <sip:d0a7f9bb@4fk2a1s0pq7j.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:9b2a>";expires=600
Expires: 600
Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY
Supported: path,gruu,outbound
User-Agent: JsSIP 3.10.6
Content-Length: 0

""").encode()
sip.append(jssip)
for m in sip:
    for t in ("sip_message", "sip_router", "ws_frame"):
        put(t, m)
put("ws_frame", "\r\n\r\n")

# SDP: what the sipp scenarios offer, and browsers' offers.
sdps = [open(p, "rb").read() for p in glob.glob(os.path.join(ROOT, "src/media/webrtc/testdata/*.sdp"))]
for m in sip:
    head, sep, body = m.partition(b"\r\n\r\n")
    if body.startswith(b"v=0"):
        sdps.append(body)
# SDES (RFC 4568 a=crypto): usable lines, and lines each broken in one field.
key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
for proto, lines in [("RTP/SAVP", ["1 AES_CM_128_HMAC_SHA1_80 inline:%s" % key]),
                     ("RTP/SAVP", ["1 AES_256_CM_HMAC_SHA1_80 inline:AAAA", "2 AES_CM_128_HMAC_SHA1_32 inline:%s|2^31" % key]),
                     ("RTP/AVP", ["1 AES_CM_128_HMAC_SHA1_80 inline:%s|2147483648" % key]),
                     ("RTP/SAVP", ["1 AES_CM_128_HMAC_SHA1_80 inline:%s|2^31|1:4" % key, "2 AES_CM_128_HMAC_SHA1_80 inline:%s|2^20" % key]),
                     ("RTP/SAVP", ["1 AES_CM_128_HMAC_SHA1_80 inline:%%%%", "x AES_CM_128_HMAC_SHA1_80 inline:AAECAwQF", "3 AES_CM_128_HMAC_SHA1_80 inline:%s UNENCRYPTED_SRTP" % key]),
                     ("RTP/SAVP", [])]:
    body = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 4000 %s 0 8 101\na=rtpmap:101 telephone-event/8000\n" % proto
    body += "".join("a=crypto:%s\n" % l for l in lines)
    sdps.append(crlf(body).encode())
for s in sdps:
    put("sdp", s)

# Digest credentials (header, then the Request-URI on the next line).
for h in ['Digest username="101", realm="ha-pbx", nonce="1700000000.1.abcdef", uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", algorithm=MD5',
          'Digest username="101",realm="ha-pbx",nonce="n",uri="sip:101@127.0.0.1:5060",response="aa",qop=auth,nc=00000001,cnonce="c",algorithm=SHA-256,opaque="o"',
          'Digest username=101, realm=ha-pbx, nonce=n, uri="sips:127.0.0.1;transport=tls", response=ab',
          'NoOneKnowsThisScheme opaque-data=here', 'Digest username="a\\"b", realm="", nonce="", uri="", response=""']:
    put("digest", h + "\nsip:101@127.0.0.1:5060")

# RTP/RTCP for the relay: [flags, src, len, packet]...
def rtp(pt, seq, ts, ssrc, payload=b"\xff" * 160, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload
def ev(digit, end, dur):
    return struct.pack("!BBH", digit, 0x80 if end else 0x0a, dur)
def rec(flags, src, pkt):
    pkt = pkt[:255]
    return bytes([flags, src, len(pkt)]) + pkt
seq = b"".join(rec(0, 0, rtp(0, i, i * 160, 0x1234)) + rec(1, 1, rtp(0, 100 + i, i * 160, 0x9999)) for i in range(4))
seq += rec(0, 0, rtp(101, 5, 800, 0x1234, ev(5, False, 160), True)) + rec(0, 0, rtp(101, 6, 800, 0x1234, ev(5, True, 800)))
seq += rec(0x10, 2, rtp(0, 7, 960, 0x5555)) + rec(0xf0, 2, rtp(0, 8, 1120, 0x5555)) + rec(2, 0, bytes([0x81, 200, 0, 6]) + b"\0" * 24)
seq += rec(5, 1, rtp(96, 9, 1280, 0x9999, ev(11, True, 400)))
put("relay_rtp", seq)
put("relay_rtp", rec(0, 3, rtp(8, 1, 1, 1)) + rec(0x30, 0, rtp(8, 65535, 4294967295, 7)) + rec(0x31, 1, rtp(8, 0, 0, 7)))

# The WebRTC bridge: [path], then [kind, len, packet]...
def brec(kind, pkt):
    pkt = pkt[:255]
    return bytes([kind, len(pkt)]) + pkt
pli = struct.pack("!BBHII", 0x81, 206, 2, 1, 2)
fir = struct.pack("!BBHIIIBBH", 0x84, 206, 4, 1, 0, 2, 1, 0, 0)
for sel in (0, 1, 2, 3, 4, 5):
    body = brec(0, rtp(0 if sel % 2 == 0 else 8, 1, 160, 5)) + brec(0, rtp(96 + (sel >> 3) % 32, 2, 960, 5, b"\x78" * 40))
    body += brec(1, bytes([111]) + struct.pack("!Q", 48000) + struct.pack("!H", 48000)[:2] + b"\xfc\xff\xfe")
    body += brec(1, bytes([0]) + struct.pack("!Q", 8000) + struct.pack("!H", 8000) + b"\xd5" * 160)
    body += brec(2, pli) + brec(2, fir) + brec(3, rtp(102, 3, 90000, 6, b"\x65" * 50, True)) + brec(4, b"\x01")
    put("bridge_rtp", bytes([sel]) + body)
# A whole bridge session: [law], then [kind, len, packet]... (kind: low two
# bits device audio / browser datagram / device video RTCP / key press and
# timer; bits 2-3 the source (0: the browser, which passed the harness's ICE
# check, for a browser datagram, the device otherwise; 1-3: strangers); top
# four bits 5 ms steps)
stun = struct.pack("!HHI", 0x0001, 8, 0x2112A442) + b"\x01" * 12 + struct.pack("!HH", 0x0006, 4) + b"ab:c"
for law in (0, 1):
    body = brec(0, rtp(0 if law == 0 else 8, 1, 160, 5)) + brec(0x14, rtp(0, 2, 320, 9)) + brec(0x18, rtp(0, 3, 480, 9))
    body += brec(0x21, stun) + brec(0x01, bytes([0x16, 0xfe, 0xfd]) + b"\0" * 10) + brec(0x01, rtp(111, 4, 960, 7))
    body += brec(0x02, pli) + brec(0x06, fir) + brec(0x13, b"5") + brec(0xf0, rtp(101, 5, 800, 5, ev(5, True, 800), True)) + brec(0xf3, b"")
    put("bridge_session", bytes([0xf0 | law]) + body)
# A real DTLS 1.2 ClientHello (OpenSSL's, with use_srtp) from the browser after
# its ICE check, so str0m's DTLS server answers; then records it cannot
# decrypt: a ChangeCipherSpec, an epoch 1 record twice (what panicked dimpl
# 0.7.6), an alert; and the same ClientHello from a stranger.
hello = open(os.path.join(ROOT, "src", "media", "webrtc", "testdata", "dtls12_client_hello.bin"), "rb").read()
def dtls(ct, epoch, seq, body):
    return struct.pack("!BHHHIH", ct, 0xfefd, epoch, seq >> 32, seq & 0xffffffff, len(body)) + body
for law in (0, 1):
    body = brec(0x01, hello) + brec(0x11, dtls(20, 0, 1, b"\x01")) + brec(0x01, dtls(22, 1, 0, b"\x14" * 40))
    body += brec(0x01, dtls(22, 1, 0, b"\x14" * 40)) + brec(0x01, dtls(21, 0, 2, b"\x02\x28")) + brec(0x05, hello)
    body += brec(0x00, rtp(0 if law == 0 else 8, 1, 160, 5)) + brec(0xf3, b"")
    put("bridge_session", bytes([law]) + body)
    put("bridge_session", bytes([law]) + brec(0x01, hello) + brec(0xf3, b"") + brec(0x01, hello))

# MQTT commands: verb, newline, payload.
for c in ["hangup\nPRESS", "answer\nPRESS", "answer_ai\n", "dial\n102", "dial\n+49 (30) 1234-56", "transfer\n103", "dtmf\n123#*ABCD",
          "announce\nThe parcel is at the door.", "announce\n" + "x" * 2100, "dtmf\n", "reboot\n1", "dial\n\xff",
          "dnd\nON", "dnd\noff", "forward_busy\n103", "forward_always\n", "forward_no_answer\nagent", "forward_busy\n10 3",
          "forward_no_answer_secs\n25.0", "forward_no_answer_secs\n1e400", "forward_no_answer_secs\n-0",
          # the PBX-wide ones take JSON
          'announce\n{"to": "01511234567", "text": "The alarm went off."}', 'dial\n{"from": "101", "to": "0301234567"}',
          'announce\n{"to": "0151", "text": "x", "to": "0152"}', 'dial\n{"from": "101", "to": "101"}']:
    put("mqtt_command", c)

# Wyoming: first byte is the chunk size, then the stream.
def wy(kind, data=None, payload=b""):
    d = json.dumps(data).encode() if data else b""
    h = {"type": kind}
    if d: h["data_length"] = len(d)
    if payload: h["payload_length"] = len(payload)
    return json.dumps(h).encode() + b"\n" + d + payload
fmt = {"rate": 16000, "width": 2, "channels": 1}
stream = wy("transcribe", {"language": "en"}) + wy("audio-start", fmt) + wy("audio-chunk", fmt, b"\x01\x00\x02\x00") + wy("audio-stop") + wy("transcript", {"text": " Turn on the light. "})
for chunk in (1, 7, 255):
    put("wyoming_frame", bytes([chunk]) + stream)
put("wyoming_frame", b"\x40" + b'{"type":"x","data":{"a":1},"data_length":2,"payload_length":3}\n{}abc')

# options.json and the YAML config.
options = {"extensions": [{"extension": "101", "password": "secret101", "name": "Front door", "dtmf": "info"}],
           "ha_user_extensions": True, "ha_user_extension_start": 100, "sip_udp_port": 5060, "sip_tcp_port": 5060,
           "sip_tls_port": 5061, "rtp_port_min": 20000, "rtp_port_max": 20999, "log_level": "info",
           "external_address": "192.0.2.5", "mqtt_host": "core-mosquitto", "mqtt_port": 1883}
put("addon_options", json.dumps(options, indent=2))
put("addon_options", '{"extensions": [], "sip_udp_port": 5070}')
# the security limits (src/addon/security_options.rs): lists as lists and as one text, a fraction, bad values
security = {"ban_after_failures": 2, "ban_window_secs": 120, "ban_secs": "900", "flood_rate": 12.5, "flood_burst": 40,
            "flood_ban_secs": 30, "max_calls_per_extension": 3, "max_media_per_call": 6, "max_sip_connections": 300,
            "max_sip_connections_per_ip": 20, "max_websockets_per_ip": 80, "idle_connection_secs": 600,
            "trusted_sources": ["192.168.1.0/24", "10.0.0.7", "::1"], "blocked_user_agents": ["scanner-x", ""]}
put("addon_options", json.dumps({**options, **security}))
put("addon_options", json.dumps({"sip_udp_port": 5070, "trusted_sources": "10.0.0.0/8, fd00::/8", "blocked_user_agents": "a b;c",
                                 "flood_rate": 0, "ban_after_failures": 4294967296}))
put("addon_options", json.dumps({"sip_udp_port": 5070, "trusted_sources": ["10.0.0.0/40", 7], "flood_rate": -1e308,
                                 "idle_connection_secs": 86401, "max_calls_per_extension": "0"}))
put("config_yaml", open(os.path.join(ROOT, "src/config/default.yaml")).read())

# SUBSCRIBE (BLF and MWI) as phones send them.
def subscribe(event, user="102", extra=""):
    return crlf(f"""SUBSCRIBE sip:{user}@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-s1;rport
From: "Desk" <sip:101@127.0.0.1>;tag=f1
To: <sip:{user}@127.0.0.1>
Call-ID: sub-1@127.0.0.1
CSeq: 1 SUBSCRIBE
Contact: <sip:101@127.0.0.1:5070>
Event: {event}
Accept: application/dialog-info+xml
Expires: 3600
{extra}Content-Length: 0

""")
for ev in ["dialog", "message-summary", "dialog;id=7", "presence", "Dialog ; id = x y"]:
    put("subscribe", subscribe(ev))
put("subscribe", subscribe("dialog", "10&2<x>", "Record-Route: <sip:proxy.invalid;lr>\n"))
put("subscribe", subscribe("message-summary", "101", "Expires: 0\n"))

# The panel: Cookie headers, ?login= query strings, sign-in JSON.
for s in ["ha_pbx_session=s3ss10n", "a=b; ha_pbx_session=s3ss10n; c=d", "ha_pbx_session=", "ha_pbx_session=x=y",
          "login=Tok3nTok3n", "login=Tok3n%54ok3n&x=1", "login=", "login=%ff%fe",
          '{"extension":"101","password":"secret101"}', '{"extension":"101","password":"x","role":"admin"}', '{"extension":1}',
          # history page keys; ingress user headers (id, login, display name)
          "1764900000000.42", "1764900000000", "0.1", "17.-3",
          "8a7c0f\nalice\nAlice Liddell", " \nbob\n", "id\n\u00e4\n\x01x"]:
    put("panel_sign_in", s)

# A provider's messages: an INVITE with P-Asserted-Identity, a 423 with Min-Expires.
put("trunk", crlf("""INVITE sip:+4930555100@192.0.2.5 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bK-t1
From: "Anna" <sip:+4917012345@carrier.example>;tag=t1
To: <sip:4930555@carrier.example>
Call-ID: trunk-1@carrier.example
CSeq: 1 INVITE
P-Asserted-Identity: "Anna" <sip:+4917012345@carrier.example>, <tel:+4917012345>
Contact: <sip:192.0.2.30:5060>
Content-Length: 0

"""))
put("trunk", crlf("""SIP/2.0 423 Interval Too Brief
Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-r1
From: <sip:4930555@carrier.example>;tag=r1
To: <sip:4930555@carrier.example>;tag=p1
Call-ID: reg-1@192.0.2.5
CSeq: 2 REGISTER
Min-Expires: 600
Content-Length: 0

"""))
