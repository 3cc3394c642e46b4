"""A browser's SIP over /ws without a browser: REGISTER the way JsSIP does
it, and a phone that rings (180) but never answers. Enough for tests of
signalling toward a browser (the PBX's WebRTC offer, CANCEL) without Chromium."""
from __future__ import annotations

import time

from harness.sip import SipMessage, digest_header, parse_message, rand_token
from harness.wsclient import WsClient


def register_like_jssip(ws, pbx, ext: str) -> str:
    """REGISTER the way JsSIP does (.invalid hosts, instance id, reg-id, MD5)."""
    call_id, tag, inst = rand_token(16), rand_token(8), "urn:uuid:6a5f0c1e-1111-4c3b-9d5e-0123456789ab"
    contact = (f'<sip:{rand_token(8)}@{rand_token(10)}.invalid;transport=ws>;+sip.ice;reg-id=1;'
               f'+sip.instance="<{inst}>";expires=600')

    def req(cseq: int, auth: str | None) -> str:
        lines = [f"REGISTER sip:{pbx.host} SIP/2.0",
                 f"Via: SIP/2.0/WSS {rand_token(10)}.invalid;branch=z9hG4bK{rand_token(10)}",
                 "Max-Forwards: 69", f"To: <sip:{ext}@{pbx.host}>", f"From: <sip:{ext}@{pbx.host}>;tag={tag}",
                 f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER", f"Contact: {contact}", "Expires: 600",
                 "Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY",
                 "Supported: path,gruu,outbound", "User-Agent: JsSIP 3.10.6"]
        if auth:
            lines.append(f"Authorization: {auth}")
        return "\r\n".join(lines + ["Content-Length: 0", "", ""])

    ws.send_text(req(1, None))
    first = parse_message(ws.recv_text(5).encode())
    assert first is not None and first.status == 401, first
    md5 = [c for c in first.all("WWW-Authenticate") if "SHA-256" not in c.upper()]
    assert md5, f"no MD5 challenge for JsSIP: {first}"
    ws.send_text(req(2, digest_header(md5[0], "REGISTER", f"sip:{pbx.host}", ext, pbx.passwords[ext])))
    ok = parse_message(ws.recv_text(5).encode())
    assert ok is not None and ok.status == 200, ok
    contact = ok.get("Contact") or ""
    assert f'+sip.instance="<{inst}>"' in contact and "reg-id=1" in contact, f"200 OK must echo them: {contact}"
    return contact


class RingingBrowser:
    """Registered as `ext` over /ws; rings at every INVITE, never answers."""

    def __init__(self, pbx, ext: str):
        self.ws = WsClient(pbx.host, pbx.http_port)
        assert self.ws.upgraded, self.ws.status_line
        register_like_jssip(self.ws, pbx, ext)
        self.invite: SipMessage | None = None

    def _next(self, timeout: float) -> SipMessage | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.ws.recv_text(max(0.05, end - time.monotonic()))
            if text and text.strip():
                return parse_message(text.encode())
        return None

    def _reply(self, req: SipMessage, status: str, to_tag: str | None) -> None:
        lines = [f"SIP/2.0 {status}"] + [f"Via: {v}" for v in req.all("via")]
        to = req.get("to") or ""
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines += [f"From: {req.get('from')}", f"To: {to}", f"Call-ID: {req.get('call-id')}",
                  f"CSeq: {req.get('cseq')}", "Content-Length: 0", "", ""]
        self.ws.send_text("\r\n".join(lines))

    def ring(self, timeout: float) -> SipMessage:
        """The next INVITE, answered with 180 Ringing (as JsSIP does)."""
        msg = self._next(timeout)
        assert msg is not None and msg.method == "INVITE", f"expected an INVITE, got {msg}"
        self.invite, self.tag = msg, rand_token(8)
        self._reply(msg, "180 Ringing", self.tag)
        return msg

    def wait_cancel(self, timeout: float) -> SipMessage:
        """The CANCEL of the ringing INVITE, answered 200, the INVITE 487."""
        assert self.invite is not None, "nothing is ringing"
        msg = self._next(timeout)
        assert msg is not None and msg.method == "CANCEL", f"expected a CANCEL, got {msg}"
        self._reply(msg, "200 OK", self.tag)
        self._reply(self.invite, "487 Request Terminated", self.tag)
        return msg

    def close(self) -> None:
        self.ws.close()
