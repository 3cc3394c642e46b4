"""Video through the WebRTC bridge: a doorbell's VP8 (baresip, fakevideo's
test picture) decoded in the browser, the browser's camera back to the
doorbell, and the audio still checked by tone. Same loopback-only network
namespace as test_webrtc.py."""
from __future__ import annotations

import time

import pytest

from test_webrtc import (_assert_both_tones, _browser_102, _door_calls_browser_answers, _only_loopback,
                         _run_in_netns, browser_factory, inside, outside)

__all__ = ["browser_factory"]  # the fixture, imported for the tests below


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


@outside
@pytest.mark.timeout(300)
def test_webrtc_video_doorbell_calls_browser():
    _run_in_netns("test_netns_video_doorbell_calls_browser", "test_webrtc_video.py")


@inside
@pytest.mark.timeout(200)
def test_netns_video_doorbell_calls_browser(pbx, baresip_factory, browser_factory, signals, workdir):
    _only_loopback()
    phone = _browser_102(pbx, browser_factory, workdir, video=True)
    door = _video_doorbell_101(pbx, baresip_factory, signals)
    _door_calls_browser_answers(pbx, door, phone)
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
    _assert_both_tones(recorded, door.recordings()[-1])
    assert pbx.alive()


@outside
@pytest.mark.timeout(300)
def test_webrtc_video_browser_calls_doorbell():
    _run_in_netns("test_netns_video_browser_calls_doorbell", "test_webrtc_video.py")


@inside
@pytest.mark.timeout(200)
def test_netns_video_browser_calls_doorbell(pbx, baresip_factory, browser_factory, signals, workdir):
    """The browser offers audio and video; the doorbell answers both."""
    _only_loopback()
    phone = _browser_102(pbx, browser_factory, workdir, video=True)
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
    _assert_both_tones(recorded, door.recordings()[-1])
    assert pbx.alive()
