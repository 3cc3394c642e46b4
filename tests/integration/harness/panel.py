"""Reading the add-on's SIP Core page (src/addon/panel.rs, at SIP_CORE; the panel
itself, web/, is at /) as the tests need it, and the headers Home Assistant's and
the Supervisor's ingress proxies add to a request."""
from __future__ import annotations

import html
import re

import yaml

ENTRY = "/api/hassio_ingress/Fq1Lg4B2"   # what harness/supervisor.py's /addons/self/info says
SIP_CORE = "/sip-core"


def ingress_headers(user_id: str, login: str, display: str) -> dict:
    """X-Remote-User-* (names as UTF-8 bytes, as aiohttp sends them), X-Ingress-Path, X-Forwarded-*."""
    return {"X-Remote-User-Id": user_id, "X-Remote-User-Name": login,
            "X-Remote-User-Display-Name": display.encode(), "X-Ingress-Path": ENTRY,
            "X-Forwarded-Host": "ha.example.org:8123", "X-Forwarded-Proto": "https"}


def sip_core_config(page: bytes) -> dict:
    """The SIP Core YAML the panel shows, parsed."""
    m = re.search(rb'<pre id="sipcore">(.*?)</pre>', page, re.S)
    assert m, page[:2000]
    return yaml.safe_load(html.unescape(m.group(1).decode()))


def my_extension(page: bytes) -> tuple[str, str]:
    """(extension, password) the panel shows the visiting user."""
    ext = re.search(rb'id="my-ext">([^<]+)<', page)
    pw = re.search(rb'id="my-pw">([^<]+)<', page)
    assert ext and pw, page[:2000]
    return ext.group(1).decode(), html.unescape(pw.group(1).decode())
