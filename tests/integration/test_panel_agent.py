"""The panel's "Answer with AI" (web/phone.js, src/http/panel/phone.rs) pressed in
a real browser, with the AI agent configured as test_agent.py does it: real
Wyoming Piper (its greeting) and faster-whisper (what the doorbell heard), the
OpenAI-compatible mock as its brain (harness/openai_mock.py). The Phone page's
extensions are test_panel.py's (harness/browser_flows.py), the screenshots and
the API helper harness/panel_checks.py's."""
from __future__ import annotations

import re
import time

import pytest

from harness import procs
from harness.browser import PanelBrowser
from harness.browser_flows import PHONE_EXTENSIONS, signed_in_phone
from harness.panel_checks import ARTIFACTS, http, shots


@pytest.mark.netns
@pytest.mark.timeout(240)
def test_phone_page_answer_with_ai_hands_the_doorbell_to_the_agent(pbx_factory, baresip_factory, workdir, registry, voice):
    """The agent configured as test_agent.py does (real Wyoming Piper and Whisper,
    the OpenAI-compatible mock as its brain) and no http.api_token, so the
    administrator signs in with the link from the log: the baresip doorbell 101
    calls the Phone page of 102, which rings; "Answer with AI" pressed in the
    page stops its ringing, the agent answers the doorbell, whose recording has
    the agent's message greeting (Whisper's transcript), and the administrator's
    Calls page shows the call as talking with the agent."""
    from harness import agent, openai_mock, speech
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    piper, whisper = voice
    llm = openai_mock.OpenAIMock().start()
    page = admin = None
    try:
        over = agent.agent_overrides(stt_url=whisper.url, tts_url=piper.url, brain=agent.openai_brain(llm))
        del over["http"]["api_token"]
        pbx = pbx_factory(extensions=PHONE_EXTENSIONS, overrides=over).start()
        print(f"\nagent ready {agent.wait_agent_ready(pbx):.1f}s after /health answered")
        link = procs.wait_until(lambda: (m := re.search(r"sign in as administrator once with http://\S+(\?login=\w+)",
                                                        pbx.log_path.read_text(errors="replace"))) and m.group(1),
                                10, what="the sign-in link in the log")
        token = (pbx.data_dir / "admin_token").read_text().strip()
        base = pbx.http_base

        page = signed_in_phone(pbx, workdir, registry, "phone102ai")
        door = agent.caller(baresip_factory, pbx, speech.silence(workdir / "quiet.wav", 120), ext="101")
        door.dial(pbx.uri("102"))
        page.command("wait-button", name="Answer with AI", timeout=15)
        assert "Front door (101)" in page.command("text", selector="#ph-call")["text"]
        assert page.command("eval", js="!!window.haPbxPhone.ring")["value"], "no ring tone while ringing"
        assert "CALL_ESTABLISHED" not in door.ctrl.event_types(), "the doorbell was answered before the button"
        t_press = time.monotonic()
        page.command("click", name="Answer with AI")
        door.ctrl.wait_event("CALL_ESTABLISHED", 15)
        print(f"the agent answered the doorbell {time.monotonic() - t_press:.2f}s after Answer with AI")
        # the page stops ringing: no call card, no ring tone, its JsSIP session gone
        page.command("wait-button", name="Answer", state="hidden", timeout=10)
        assert not page.command("visible", selector="#ph-call")["visible"]
        assert page.command("eval", js="!window.haPbxPhone.ring && window.haPbxPhone.session === null")["value"], "the page still rings"

        # the administrator's live calls: the doorbell's call, answered by the agent
        status, calls = http("GET", "/api/calls", token, base=base)
        assert status == 200 and [(c["caller"], c["callee"], c["answered"], c["answered_by_agent"]) for c in calls["calls"]] == [
            ("101", "102", True, True)], calls
        admin = PanelBrowser(workdir, registry, "admin-ai")
        admin.command("goto", url=base + "/" + link)
        admin.command("goto", url=base + "/#calls")
        admin.command("wait-text", text="Talking with the AI agent")
        row = admin.command("text", selector="#calls-table tbody")["text"]
        assert re.search(r"101\s+102\s+Talking with the AI agent", row), row
        assert "Answer with AI" not in row  # answered: only Hang up and Transfer
        shots(admin, "calls-answered-by-ai")

        # the doorbell hears the agent's greeting (the message greeting: 102 did not answer)
        s = agent.wait_sound(door, after=0.0, timeout=20)
        e = agent.wait_quiet(door, after=s, quiet=agent.GREETING_END_QUIET_S, timeout=30)
        assert "CALL_CLOSED" not in door.ctrl.event_types(), "the agent dropped the call"
        agent.hang_up(door)
        greeting = agent.words(whisper.transcribe_wav(agent.recording(door), 0.0, e + 0.3))
        print(f"greeting heard by the doorbell ({s:.1f}-{e:.1f} s): {greeting!r}")
        assert e - s >= 1.0 and "message" in greeting, greeting
        admin.command("wait-text", text="No call right now.")
        assert not page.has_event("pageerror") and not admin.has_event("pageerror"), page.events + admin.events
    finally:
        for b in (page, admin):
            if b:
                b.quit()
        llm.stop()
