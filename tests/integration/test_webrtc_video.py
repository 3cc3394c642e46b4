"""Video through the WebRTC bridge: a doorbell's VP8 (baresip, fakevideo's
test picture) decoded in the browser, the browser's camera back to the
doorbell, and the audio still checked by tone. Same loopback-only network
namespace as test_webrtc.py (`@pytest.mark.netns`, run by conftest.py)."""
from __future__ import annotations

import re
import threading
import time

import pytest

from harness import audio
from harness.browser_flows import (assert_both_tones, browser_102, browser_103_calls_102, browser_hangs_up,
                                   browsers_hear_each_other, door_calls_browser_answers)


def _video_doorbell_101(pbx, baresip_factory, signals):
    door = baresip_factory("door101", user="101", domain=f"{pbx.host}:{pbx.sip_port}",
                           password=pbx.passwords["101"], source=signals["tone440"], video=True).start()
    door.wait_registered(15)
    return door


def _wait_frames(phone, at_least: int, timeout: float) -> dict:
    end = time.monotonic() + timeout
    stats = None
    while time.monotonic() < end:
        stats = phone.video_stats()
        if stats and (stats.get("framesDecoded") or 0) >= at_least:
            return stats
        time.sleep(0.5)
    raise AssertionError(f"browser decoded fewer than {at_least} video frames: {stats}")


@pytest.mark.netns
@pytest.mark.timeout(200)
def test_webrtc_video_doorbell_calls_browser(pbx, baresip_factory, browser_factory, signals, workdir):
    phone = browser_102(pbx, browser_factory, workdir, video=True)
    door = _video_doorbell_101(pbx, baresip_factory, signals)
    door_calls_browser_answers(pbx, door, phone)
    phone.wait_event("track", 10)
    time.sleep(1.5)
    recorded = phone.record(5)
    stats = _wait_frames(phone, 10, 10)
    print(f"browser video: {stats}")
    assert stats["codec"] == "video/VP8", stats
    # The browser's fake camera reaches the doorbell, in VP8 under its payload type.
    assert "incoming rtp for 'video' established" in door.log_text(), door.log_tail(80)
    door.hangup()
    door.wait_closed(10)
    phone.wait_event("ended", 10)
    assert_both_tones(recorded, door.recordings()[-1])
    assert pbx.alive()


@pytest.mark.netns
@pytest.mark.timeout(200)
def test_webrtc_video_browser_calls_doorbell(pbx, baresip_factory, browser_factory, signals, workdir):
    """The browser offers audio and video; the doorbell answers both."""
    phone = browser_102(pbx, browser_factory, workdir, video=True)
    door = _video_doorbell_101(pbx, baresip_factory, signals)  # answers by itself
    phone.command("call", target=f"sip:101@{pbx.host}")
    phone.wait_event("confirmed", 20)
    door.wait_established(10)
    phone.wait_event("track", 10)
    time.sleep(1.5)
    recorded = phone.record(5)
    stats = _wait_frames(phone, 10, 10)
    print(f"browser video: {stats}")
    assert stats["codec"] == "video/VP8", stats
    assert "incoming rtp for 'video' established" in door.log_text(), door.log_tail(80)
    phone.command("hangup")
    door.wait_closed(10)
    phone.wait_event("ended", 10)
    assert_both_tones(recorded, door.recordings()[-1])
    assert pbx.alive()


def _directions(sdp: str) -> dict[str, str]:
    """{"audio": "sendonly", "video": ...}: each section's direction attribute."""
    out, kind = {}, None
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            kind = line[2:].split(" ")[0]
            out[kind] = "sendrecv"
        elif kind and line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive"):
            out[kind] = line[2:]
    return out


def _device_sdp(media, video_port: int, vp8_pt: int, direction: str, version: int) -> bytes:
    from harness.ua import make_sdp
    audio = make_sdp(media.host, media.port, direction=direction, version=version, session=4242).decode()
    return (audio + f"m=video {video_port} RTP/AVP {vp8_pt}\r\na=rtpmap:{vp8_pt} VP8/90000\r\n"
            f"a={direction}\r\n").encode()


@pytest.mark.netns
@pytest.mark.timeout(200)
def test_webrtc_hold_changes_audio_and_video_both_ways(pbx, browser_factory, workdir):
    """The browser's hold (the card's button: every stream sendonly) reaches
    the device as a re-INVITE with both sections sendonly, and its resume as
    sendrecv; the device's hold reaches the browser as a new offer with both
    sections sendonly, and the device is answered recvonly for both. A
    scripted device (harness/ua.py), which sees the SDP it is sent."""
    from harness.rtp import RtpEndpoint, tone_samples
    from harness.ua import UA, parse_sdp
    phone = browser_102(pbx, browser_factory, workdir, video=True)
    door = UA(pbx, "101")
    media, video = RtpEndpoint(), RtpEndpoint()
    try:
        assert door.register().status == 200
        phone.command("call", target=f"sip:101@{pbx.host}")
        invite = door.wait_request("INVITE", 10)
        assert invite is not None
        offer = invite.body.decode()
        assert _directions(offer) == {"audio": "sendrecv", "video": "sendrecv"}, offer
        vp8 = int(re.search(r"a=rtpmap:(\d+) VP8/90000", offer).group(1))
        dialog = door.answer(invite, _device_sdp(media, video.port, vp8, "sendrecv", 1))
        media.start_sending(tone_samples(440, 20), peer=parse_sdp(invite.body).addr)
        phone.wait_event("confirmed", 10)
        assert door.wait_request("ACK", 5) is not None

        # The browser holds, then resumes.
        for on, want, answer in ((True, "sendonly", "recvonly"), (False, "sendrecv", "sendrecv")):
            done: list = []
            t = threading.Thread(target=lambda on=on: done.append(phone.command("hold", on=on)), daemon=True)
            t.start()
            reinvite = door.wait_request("INVITE", 10)
            assert reinvite is not None, "no re-INVITE reached the device"
            got = _directions(reinvite.body.decode())
            print(f"browser {'holds' if on else 'resumes'}: device offered {got}")
            assert got == {"audio": want, "video": want}, reinvite.body.decode()
            door.respond(reinvite, 200, body=_device_sdp(media, video.port, vp8, answer, 3 if on else 4),
                         to_tag=dialog.local_tag)
            t.join(10)
            assert done and done[0]["done"] is True, done
            phone.wait_event("hold-local" if on else "unhold-local", 5)

        # The device holds: the browser is offered sendonly on both streams.
        r = dialog.request("INVITE", _device_sdp(media, video.port, vp8, "sendonly", 5))
        assert r is not None and r.status == 200, r
        answered = _directions(r.body.decode())
        print(f"device holds: answered {answered}")
        assert answered == {"audio": "recvonly", "video": "recvonly"}, r.body.decode()
        phone.wait_event("hold-remote", 5)
        remote = _directions(phone.command("sdp")["sdp"]["remote"])
        assert remote == {"audio": "sendonly", "video": "sendonly"}, remote
        r = dialog.request("INVITE", _device_sdp(media, video.port, vp8, "sendrecv", 6))
        assert r is not None and r.status == 200, r
        assert _directions(r.body.decode()) == {"audio": "sendrecv", "video": "sendrecv"}, r.body.decode()
        phone.wait_event("unhold-remote", 5)
        time.sleep(1.0)
        resumed = phone.record(3)
        browser_hangs_up(phone, door)
    finally:
        media.close()
        video.close()
        door.close()
    heard = audio.analyze_tone(resumed)
    print(f"browser heard after both holds: {heard}")
    assert heard.ok(440, min_seconds=2), heard
    assert pbx.alive()


@pytest.mark.netns
@pytest.mark.timeout(200)
def test_webrtc_video_browser_calls_browser(pbx, browser_factory, workdir):
    """Two dashboards with cameras: each decodes the other's picture (two
    chained bridges, the plain video ports of each the other's "device")."""
    caller, callee = browser_103_calls_102(pbx, browser_factory, workdir, video=True)
    for name, p in (("102", callee), ("103", caller)):
        stats = _wait_frames(p, 20, 15)
        print(f"{name} video: {stats}")
        assert stats["codec"] in ("video/VP8", "video/H264"), stats
    browsers_hear_each_other(caller, callee, seconds=5)
    assert pbx.alive()
