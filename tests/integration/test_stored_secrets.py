"""Passwords at rest (issue 17, item 9): the SQLite database keeps HA1 =
H(extension:realm:password) per digest algorithm, not the password, and is
readable by its owner only (database, -wal, -shm: 0600; data dir made 0700).
A database written by an older ha-pbx, with passwords in it, is hashed at the
next start and no longer holds them; devices keep registering (MD5 and
SHA-256) with the same passwords."""
from __future__ import annotations

import os
import stat

import pytest

from harness import sip as siplib

DB = "ha-pbx.sqlite"


def _plain_passwords_in(data_dir, passwords) -> dict[str, list[str]]:
    """{file: [passwords found in its bytes]} for every file of data_dir."""
    found = {}
    for p in sorted(data_dir.iterdir()):
        if not p.is_file():
            continue
        data = p.read_bytes()
        hits = [pw for pw in passwords if pw.encode() in data]
        if hits:
            found[p.name] = hits
    return found


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _registers(pbx, ext: str) -> bool:
    with siplib.SipClient(pbx.host, pbx.sip_port) as c:
        r = c.register(ext, pbx.passwords[ext], expires=60)
    return r is not None and r.status == 200


@pytest.mark.timeout(60)
def test_the_database_holds_no_password_and_only_its_owner_reads_it(pbx):
    assert _registers(pbx, "101")
    data = pbx.data_dir
    found = _plain_passwords_in(data, pbx.passwords.values())
    assert not found, f"passwords in plain text in the data dir: {found}"
    files = [p for p in data.iterdir() if p.name.startswith(DB)]
    assert any(p.name == DB for p in files), files
    modes = {p.name: oct(_mode(p)) for p in files}
    assert all(m == oct(0o600) for m in modes.values()), f"database files readable by others: {modes}"
    assert _mode(data) == 0o700, f"data dir made with mode {oct(_mode(data))}"


@pytest.mark.timeout(90)
def test_a_database_with_plain_passwords_is_hashed_at_start(pbx_factory):
    """Rows written with a password (as ha-pbx before HA1 storage did, here
    made by hand: an extension of another source) lose it at the next start,
    and that extension still authenticates with it."""
    import sqlite3

    p = pbx_factory(overrides={"sip": {"digest_algorithms": ["SHA-256", "MD5"]}})
    p.start()
    p.stop()
    db = p.data_dir / DB
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO extensions (extension, password, name, source) VALUES "
                  "('150', 'legacy-plain-150', 'Old', 'legacy')")
        c.execute("UPDATE extensions SET password = 'legacy-plain-101' WHERE extension = '101'")
    os.chmod(db, 0o644)
    p.passwords["150"] = "legacy-plain-150"
    p.start()
    found = _plain_passwords_in(p.data_dir, ["legacy-plain-150", "legacy-plain-101", *p.passwords.values()])
    assert not found, f"passwords left in the data dir after the start-up migration: {found}"
    assert _mode(db) == 0o600, oct(_mode(db))
    assert "stored passwords replaced by their digest hashes" in p.log_text()
    assert _registers(p, "150"), "the migrated extension no longer authenticates"
    assert _registers(p, "101")


@pytest.mark.timeout(60)
def test_sha256_and_md5_both_verify_from_the_stored_hashes(pbx_factory):
    p = pbx_factory(overrides={"sip": {"digest_algorithms": ["SHA-256", "MD5"]}}).start()
    for alg in ("SHA-256", "MD5"):
        with siplib.SipClient(p.host, p.sip_port) as c:
            r = c.register("102", p.passwords["102"], expires=60, algorithm=alg)
        assert r is not None and r.status == 200, (alg, r)
