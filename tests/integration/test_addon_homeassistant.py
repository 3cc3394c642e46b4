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
from harness.addon import AddonPbx
from harness.homeassistant import HaError, HomeAssistant
from harness.panel import ENTRY, ingress_headers, my_extension, sip_core_config
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

        # a look at the panel without user headers: the owner is listed already
        status, page = pbx.get(sup.ingress_port, "/", source=PROXY)
        assert status == 200, page
        users = sip_core_config(page)["users"]
        assert [(u["ha_username"], u["extension"]) for u in users] == [("Test Admin", "100")]
        assert pbx.register("100", users[0]["password"]) == 200

        # the owner's own visit finds that extension
        status, page = pbx.get(sup.ingress_port, "/", source=PROXY, headers=ingress_headers(owner, "admin", "Test Admin"))
        assert my_extension(page) == ("100", users[0]["password"])
        assert len(sip_core_config(page)["users"]) == 1
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
