"""BLF and MWI (issue 14): SUBSCRIBE/NOTIFY (RFC 6665) for `dialog` (RFC 4235)
and `message-summary` (RFC 3842).

A sipp BLF key (extension 104) watches the doorbell 101; a baresip doorbell
calls the ring group 600 (102 without a device, baresip 103), 103 rings,
answers, and the door hangs up: the subscriber gets NOTIFYs with the idle
state, early, confirmed and terminated (XML checked: local and remote
identities with display names), then unsubscribes with Expires: 0. Python
BLF keys on the members see both ring, 103 confirmed as the one that
answered, 102 back to terminated at once, and 103 terminated at the end. Python UAs (harness/ua.py)
check the refusals (no credentials, unknown target, unknown package, another's
mailbox, too short, malformed), the per-extension cap under a SUBSCRIBE flood
(the table size in /health stays at the cap), and MWI: messages stored in the
PBX's `messages` table (inserted into its SQLite file: the agent's real path
needs Wyoming models) give `Messages-Waiting: yes` with the count, and marking
one read through `POST /api/messages/{id}/read` sends the new counts."""
from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from harness import procs
from harness.agent import API_TOKEN, http_post
from harness.sip import digest_header, rand_token

NS = "{urn:ietf:params:xml:ns:dialog-info}"
CAP = 5
OVERRIDES = {
    "sip": {"subscriptions": {"min_expires": 60, "max_expires": 3600, "default_expires": 600,
                              "max_per_extension": CAP, "max_total": 50}},
    "groups": [{"extension": "600", "name": "House", "members": ["102", "103"]}],
    "http": {"api_token": API_TOKEN},
}


@pytest.fixture
def spbx(pbx_factory):
    return pbx_factory(overrides=OVERRIDES).start()


def health(pbx) -> dict:
    with urllib.request.urlopen(pbx.http_base + "/health", timeout=5) as r:
        return json.loads(r.read())


class Sub:
    """One subscription dialog from a Python UA (answers the 401 challenge)."""

    def __init__(self, ua, target: str, event: str = "dialog"):
        self.ua, self.target, self.event = ua, target, event
        self.uri = f"sip:{target}@{ua.server[0]}:{ua.server[1]}"
        self.call_id = rand_token(12) + "@sub"
        self.tag: str | None = rand_token(8)
        self.to_tag: str | None = None
        self.cseq = 0

    def send(self, expires: int | None = 600, *, auth: bool = True, contact: bool = True,
             extra: list[tuple[str, str]] | None = None, password: str | None = None):
        to = f"<{self.uri}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        creds: list[tuple[str, str]] = []
        r = None
        for _ in range(2):
            self.cseq += 1
            tag = f";tag={self.tag}" if self.tag is not None else ""
            hdrs = [("From", f"<sip:{self.ua.ext}@{self.ua.server[0]}>{tag}"), ("To", to),
                    ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} SUBSCRIBE"),
                    ("Event", self.event)]
            if contact:
                hdrs.append(("Contact", f"<{self.ua.contact_uri}>"))
            if expires is not None:
                hdrs.append(("Expires", str(expires)))
            hdrs += (extra or []) + creds
            r = self.ua.transaction("SUBSCRIBE", self.uri, hdrs)
            if r is None or r.status != 401 or not auth or creds:
                break
            creds = [("Authorization", digest_header(r.get("WWW-Authenticate") or "", "SUBSCRIBE", self.uri,
                                                     self.ua.ext, password or self.ua.password))]
        if r is not None and r.status == 200 and self.to_tag is None:
            self.to_tag = (r.get("to") or "").split("tag=")[-1].split(";")[0]
        return r

    def notify(self, timeout: float = 5.0):
        """The next NOTIFY of this dialog, answered 200."""
        n = self.ua.wait_request("NOTIFY", timeout, call_id=self.call_id)
        assert n is not None, f"no NOTIFY for {self.target} ({self.event})\n{self.ua.trace_text(12)}"
        self.ua.respond(n, 200)
        return n


@pytest.mark.timeout(90)
def test_blf_key_sees_the_doorbell_ring_answer_and_hang_up(spbx, sipp, baresip_factory, signals, uas):
    pbx = spbx
    dom = f"{pbx.host}:{pbx.sip_port}"
    door = baresip_factory("101", user="101", domain=dom, password=pbx.passwords["101"], source=signals["tone440"],
                           answermode="auto").start()
    garage = baresip_factory("103", user="103", domain=dom, password=pbx.passwords["103"],
                             source=signals["tone1000"], answermode="manual").start()
    door.wait_registered(15)
    garage.wait_registered(15)
    key = sipp.start("subscribe_dialog.xml", f"{pbx.host}:{pbx.sip_port}", service="101",
                     auth=("104", pbx.passwords["104"]), keys={"sub": "104"}, recv_timeout_ms=20000, timeout_s=60)

    def notifies():
        return [m.msg for m in key.messages() if not m.msg.is_response and m.msg.method == "NOTIFY"]

    procs.wait_until(lambda: len(notifies()) >= 1, 10, interval=0.1, what="the first NOTIFY (idle)")
    # BLF keys on the group's members (a Python UA as 104).
    watcher = uas(pbx, "104")
    members = {m: Sub(watcher, m) for m in ("102", "103")}
    for s in members.values():
        r = s.send()
        assert r is not None and r.status == 200, f"SUBSCRIBE {s.target}: {r}"
        assert ET.fromstring(s.notify().body).findall(f"{NS}dialog") == [], f"{s.target} idle at first"
    assert health(pbx)["subscriptions"] == 3

    def member_dialog(ext: str):
        (dlg,) = ET.fromstring(members[ext].notify().body).findall(f"{NS}dialog")
        return dlg

    door.dial(pbx.uri("600"))
    garage.ctrl.wait_event("CALL_INCOMING", 10)
    procs.wait_until(lambda: len(notifies()) >= 2, 10, interval=0.1, what="the NOTIFY with the ringing call")
    for ext in ("102", "103"):
        dlg = member_dialog(ext)
        assert dlg.find(f"{NS}state").text == "early" and dlg.get("direction") == "recipient", ET.tostring(dlg)
        who = dlg.find(f"{NS}remote/{NS}identity")
        assert who.text.startswith("sip:101@") and who.get("display") == "Front door", ET.tostring(dlg)
    garage.ctrl.command("accept")
    door.wait_established(10)
    procs.wait_until(lambda: len(notifies()) >= 3, 10, interval=0.1, what="the NOTIFY with the answered call")
    answered, idle = member_dialog("103"), member_dialog("102")
    assert answered.find(f"{NS}state").text == "confirmed", "the member that answered: " + ET.tostring(answered).decode()
    me = answered.find(f"{NS}local/{NS}identity")
    assert me.text.startswith("sip:103@") and me.get("display") == "Garage", ET.tostring(answered)
    assert idle.find(f"{NS}state").text == "terminated", "the member that did not answer: " + ET.tostring(idle).decode()
    door.hangup()
    door.wait_closed(10)
    assert member_dialog("103").find(f"{NS}state").text == "terminated", "103 after the hang-up"
    assert watcher.wait_request("NOTIFY", 1.0, call_id=members["102"].call_id) is None, "102 was told of the call again"
    res = key.wait(30)
    assert res.ok, res.summary()
    got = [m for m in res.received() if not m.is_response and m.method == "NOTIFY"]
    assert len(got) == 5, [n.body for n in got]
    cseqs = [n.cseq()[0] for n in got]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == 5, f"CSeq must rise: {cseqs}"
    assert all(n.get("event") == "dialog" for n in got)
    assert all(n.get("content-type") == "application/dialog-info+xml" for n in got[:4])
    docs = [ET.fromstring(n.body) for n in got[:4]]
    assert [int(d.get("version")) for d in docs] == [0, 1, 2, 3]
    assert all(d.get("state") == "full" and d.get("entity").startswith("sip:101@") for d in docs)
    assert docs[0].findall(f"{NS}dialog") == [], "idle at first"
    states = []
    for d in docs[1:]:
        (dlg,) = d.findall(f"{NS}dialog")
        states.append(dlg.find(f"{NS}state").text)
        assert dlg.get("direction") == "initiator", "the doorbell placed the call"
        assert dlg.get("call-id"), "call-id for BLF pickup"
    assert states == ["early", "confirmed", "terminated"]
    early = docs[1].find(f"{NS}dialog")
    remote = early.find(f"{NS}remote/{NS}identity")
    assert remote.text.startswith("sip:600@") and remote.get("display") == "House", ET.tostring(early)
    local = early.find(f"{NS}local/{NS}identity")
    assert local.text.startswith("sip:101@") and local.get("display") == "Front door", ET.tostring(early)
    assert got[3].get("subscription-state").startswith("active;expires=")
    assert got[4].get("subscription-state") == "terminated;reason=timeout", "Expires: 0 ends it"
    for sub in members.values():
        r = sub.send(expires=0)
        assert r is not None and r.status == 200, f"un-SUBSCRIBE {sub.target}: {r}"
        sub.notify()
    procs.wait_until(lambda: health(pbx)["subscriptions"] == 0, 5, interval=0.1, what="the table empty again")


@pytest.mark.timeout(60)
def test_refusals_and_the_flood_cap(spbx, uas):
    pbx = spbx
    ua = uas(pbx, "102")
    # no credentials: challenged, nothing kept
    r = Sub(ua, "101").send(auth=False)
    assert r.status == 401 and r.get("WWW-Authenticate"), r
    r = Sub(ua, "101").send(password="wrong")
    assert r.status == 403, r
    assert Sub(ua, "999").send().status == 404, "unknown target"
    r = Sub(ua, "101", event="presence").send()
    assert r.status == 489 and "dialog" in (r.get("allow-events") or ""), r
    assert Sub(ua, "103", event="message-summary").send().status == 403, "another's mailbox"
    r = Sub(ua, "101").send(expires=30)
    assert r.status == 423 and r.get("min-expires") == "60", r
    assert Sub(ua, "101").send(contact=False).status == 400, "no Contact"
    assert Sub(ua, "101").send(extra=[("Expires", "soon")], expires=None).status == 400, "bad Expires"
    untagged = Sub(ua, "101")
    untagged.tag = None
    assert untagged.send().status == 400, "From without a tag"
    # a refresh of a dialog we never made
    ghost = Sub(ua, "101")
    ghost.to_tag = "nosuchtag"
    assert ghost.send().status == 481
    assert health(pbx)["subscriptions"] == 0
    # a group is a valid BLF target
    g = Sub(ua, "600")
    assert g.send().status == 200
    g.notify()
    # flood: one extension, CAP subscriptions, then refusals; the table stays at the cap
    subs = [g]
    for _ in range(CAP - 1):
        s = Sub(ua, "101")
        assert s.send().status == 200
        s.notify()
        subs.append(s)
    refused = [Sub(ua, "101").send().status for _ in range(20)]
    assert refused == [403] * 20, refused
    assert health(pbx)["subscriptions"] == CAP
    # another extension is not shut out by 102's flood; over TCP its NOTIFY
    # comes back on its own connection
    tcp = uas(pbx, "104", transport="tcp")
    other = Sub(tcp, "101")
    assert other.send().status == 200
    n = other.notify()
    assert n.get("subscription-state", "").startswith("active")
    assert health(pbx)["subscriptions"] == CAP + 1
    # unsubscribing frees the place
    r = subs[0].send(expires=0)
    assert r.status == 200 and r.get("expires") == "0", r
    assert subs[0].notify().get("subscription-state") == "terminated;reason=timeout"
    assert health(pbx)["subscriptions"] == CAP
    assert "SUBSCRIBE refused: sip.subscriptions.max_per_extension reached" in pbx.log_path.read_text()


@pytest.mark.timeout(60)
def test_mwi_counts_messages_and_a_read_one_turns_old(spbx, uas):
    pbx = spbx
    db = sqlite3.connect(pbx.data_dir / "ha-pbx.sqlite", timeout=10)
    now = int(time.time() * 1000)
    with db:
        mine = db.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) "
                          "VALUES ('c1', '101', '102', 'parcel at the door', ?)", (now,)).lastrowid
        db.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) "
                   "VALUES ('c2', '101', '600', 'for the house', ?)", (now,))
        db.execute("INSERT INTO messages (call_id, caller, callee, transcript, created_at) "
                   "VALUES ('c3', '101', '104', 'not for 102', ?)", (now,))
    db.close()
    ua = uas(pbx, "102")
    s = Sub(ua, "102", event="message-summary")
    r = s.send()
    assert r.status == 200, r
    n = s.notify()
    assert n.get("content-type") == "application/simple-message-summary"
    body = n.body.decode()
    assert "Messages-Waiting: yes\r\n" in body, body
    assert "Message-Account: sip:102@" in body, body
    assert "Voice-Message: 2/0 (0/0)\r\n" in body, "one for 102, one for its group 600: " + body
    code, text = http_post(pbx, f"/api/messages/{mine}/read")
    assert code == 200, text
    body = s.notify().body.decode()
    assert "Messages-Waiting: yes\r\n" in body and "Voice-Message: 1/1 (0/0)\r\n" in body, body
    assert http_post(pbx, "/api/messages/99999/read")[0] == 404
    assert http_post(pbx, "/api/messages/x/read")[0] == 400
