"""The add-on against a real Home Assistant core (2025.4.4, harness/homeassistant.py),
reached through the fake Supervisor's /core/api proxy: the panel lists HA's
users (from their person entities) with extensions before any of them opened
it; ha-pbx sets `text.asterisk_addon_ingress_entry` to its ingress entry, and
sets it again after Home Assistant restarts (HA does not keep states set
through the REST API)."""
from __future__ import annotations

import json
import time

import pytest

from harness import procs
from harness.addon import AddonPbx, http_request
from harness.homeassistant import HaError, HomeAssistant
from harness.panel import ENTRY, SIP_CORE, ingress_headers, my_extension, sip_core_config
from harness.supervisor import TOKEN, FakeSupervisor

PROXY = "127.0.0.2"
ENTITY = "text.asterisk_addon_ingress_entry"


# ha: conftest.py, one Home Assistant for the session.


def wait_running(ha: HomeAssistant, timeout: float = 120.0) -> None:
    def running():
        try:
            return ha.get("/api/config").get("state") == "RUNNING"
        except (HaError, OSError):
            return False
    procs.wait_until(running, timeout, interval=0.5, what="Home Assistant RUNNING")


def posts(sup: FakeSupervisor) -> list[dict]:
    return [r for r in sup.requests if r["method"] == "POST" and r["path"] == f"/core/api/states/{ENTITY}"]


def test_panel_lists_home_assistants_users_before_they_visit(ha, workdir, registry, dumper):
    sup = FakeSupervisor(ingress_port=procs.free_port("sip"), core=(ha.base, ha.token)).start()
    try:
        pbx = AddonPbx(workdir / "addon", registry, supervisor_url=sup.url, token=TOKEN, ingress_allow=PROXY)
        dumper.add("ha-pbx add-on", pbx)
        pbx.launch()
        pbx.wait_ready()
        # the owner made at onboarding, and the person HA made for them
        owner = str(ha.template("{{ states.person | map(attribute='attributes.user_id') | select | first }}")).strip()
        assert owner and owner != "None"

        # a look at the panel without user headers gives the owner an extension
        # (Home Assistant lists them), but shows no user's password: nobody asked
        status, page = pbx.get(sup.ingress_port, SIP_CORE, source=PROXY)
        assert status == 200, page
        pbx.wait_log("extension created for a Home Assistant user")
        assert sip_core_config(page)["users"] == [] and b"your own entry only" in page

        # the owner's own visit finds that extension; an administrator sees every user's entry
        owner_h = ingress_headers(owner, "admin", "Test Admin")
        status, page = pbx.get(sup.ingress_port, SIP_CORE, source=PROXY, headers=owner_h)
        users = sip_core_config(page)["users"]
        assert [(u["ha_username"], u["extension"]) for u in users] == [("Test Admin", "100")]
        assert my_extension(page) == ("100", users[0]["password"])
        assert pbx.register("100", users[0]["password"]) == 200

        # who administers: HA's own user list (config/auth/list through the
        # Supervisor's WebSocket proxy). The owner is in system-admin...
        def api(method, path, headers, body=None):
            status, raw = http_request(pbx.bind, sup.ingress_port, method, path, source=PROXY, headers=headers, body=body)
            return status, json.loads(raw or b"null")
        status, me = api("GET", "/api/session", owner_h)
        assert status == 200 and (me["role"], me["extension"], me["via"]) == ("admin", "100", "ingress"), me
        status, body = api("GET", "/api/admin/extensions", owner_h)
        assert status == 200 and [e["extension"] for e in body["extensions"]] == ["100"], body
        assert api("GET", "/api/phone", owner_h)[1]["extension"] == "100"
        # ...a user HA made without administration is not
        with ha.ws() as ws:
            kid = ws.call("config/auth/create", name="Kid", group_ids=["system-users"])["user"]
        try:
            kid_h = ingress_headers(kid["id"], "kid", "Kid")
            status, me = api("GET", "/api/session", kid_h)
            assert status == 200 and me["role"] == "extension" and me["extension"] == "101", me
            status, body = api("GET", "/api/admin/extensions", kid_h)
            assert status == 403 and "administrators only" in body["error"], body
            assert api("DELETE", "/api/admin/extensions/100", kid_h)[0] == 403
            assert api("GET", "/api/admin/diagnostics", kid_h)[0] == 403
            status, body = api("GET", "/api/phone", kid_h)
            assert status == 200 and body["extension"] == "101", body
            # the SIP Core page: the kid's own entry, never the owner's password
            status, page = pbx.get(sup.ingress_port, SIP_CORE, source=PROXY, headers=kid_h)
            assert status == 200 and [(u["ha_username"], u["extension"]) for u in sip_core_config(page)["users"]] == [("Kid", "101")], page
            assert users[0]["password"].encode() not in page
            # deny by default: an id HA does not list; no user at all
            assert api("GET", "/api/admin/extensions", ingress_headers("0" * 32, "ghost", "Ghost"))[0] == 403
            assert api("GET", "/api/admin/extensions", {})[0] == 403
            # no sign-in through ingress (every browser shares the proxy's address:
            # wrong guesses would ban them all), and nothing got banned
            status, body = api("POST", "/api/session", kid_h, json.dumps({"extension": "100", "password": "x"}).encode())
            assert status == 403 and "Home Assistant" in body["error"], body
            assert api("GET", "/api/admin/extensions", owner_h)[0] == 200
            # from the LAN, the owner's headers are worth nothing
            assert http_request(pbx.bind, sup.ingress_port, "GET", "/api/admin/extensions", source="127.0.0.1", headers=owner_h)[0] == 403
        finally:
            with ha.ws() as ws:
                ws.call("config/auth/delete", user_id=kid["id"])
    finally:
        sup.stop()


@pytest.mark.timeout(300)
def test_ingress_entry_state_appears_and_comes_back_after_ha_restarts(ha, workdir, registry, dumper):
    if ha.state(ENTITY) is not None:  # left by an earlier test's add-on
        ha.request("DELETE", f"/api/states/{ENTITY}")
    sup = FakeSupervisor(ingress_port=procs.free_port("sip"), core=(ha.base, ha.token)).start()
    try:
        pbx = AddonPbx(workdir / "addon", registry, supervisor_url=sup.url, token=TOKEN, ingress_allow=PROXY)
        dumper.add("ha-pbx add-on", pbx)
        pbx.launch()
        pbx.wait_ready()

        t0 = time.monotonic()
        state = ha.wait_state(ENTITY, lambda s: s["state"] == ENTRY, timeout=20)
        print(f"\n{ENTITY} = {state['state']} in HA {time.monotonic() - t0:.1f} s after ready")
        pbx.wait_log(f"{ENTITY} set to {ENTRY}")
        # through the Supervisor's proxy, with the add-on's token
        first = posts(sup)
        assert len(first) == 1 and first[0]["authorization"] == f"Bearer {TOKEN}"
        assert json.loads(first[0]["body"])["state"] == ENTRY

        # Home Assistant restarts: the state is gone until the add-on sets it again
        ha.stop()
        ha.start()
        wait_running(ha)
        t0 = time.monotonic()
        ha.wait_state(ENTITY, lambda s: s["state"] == ENTRY, timeout=30)
        print(f"set again {time.monotonic() - t0:.1f} s after HA was running again")
        assert len(posts(sup)) >= 2, "the state after the restart must come from a new POST"
        assert pbx.proc is not None and pbx.proc.poll() is None
    finally:
        sup.stop()
