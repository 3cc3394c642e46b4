"""Reading a QR code the panel shows, as a person's phone would: the image
cut from a real Chromium screenshot and decoded by zbarimg (zbar-tools)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from harness import procs


def read_qr(browser, selector: str, png: Path, what: str, extension: str | None = None) -> str:
    """Waits until the <img> at `selector` has loaded (and, with `extension`,
    is that extension's: its `data-extension`), screenshots it into `png` and
    returns what zbarimg reads from it."""
    want = "null" if extension is None else repr(extension)
    procs.wait_until(lambda: browser.command("eval", js=f"(i => !!(i && i.complete && i.naturalWidth > 0 && ({want} === null || i.dataset.extension === {want})))"
                                                 f"(document.querySelector({selector!r}))")["value"],
                     10, interval=0.2, what=f"{what} shown")
    browser.command("screenshot-element", selector=selector, out=str(png))
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=20)
    assert decoded.returncode == 0, (what, decoded.returncode, decoded.stderr)
    return decoded.stdout.rstrip("\n")
