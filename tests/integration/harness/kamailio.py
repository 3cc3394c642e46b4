"""A real Kamailio as the phone provider of a SIP trunk: a registrar with
digest auth (401 on REGISTER), proxy-auth (407) on the calls ha-pbx places,
and the routing to a "PSTN phone" (a baresip registered at the provider).

Every request the provider sees leaves an `xlog` line starting `PROVIDER`,
so tests read on the wire what ha-pbx sent: who registered with which
credentials, the number dialled (strip/prepend), the From and
P-Asserted-Identity (caller ID) and the digest username."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from . import procs

CFG = r'''#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
alias="127.0.0.1:@PORT@"
@EXTRA_LISTEN@
@TLS_LISTEN@
dns=no
rev_dns=no
use_dns_cache=no

mpath="@MPATH@"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"
@TLS_MODULES@

modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 1)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "gruu_enabled", 0)
modparam("rr", "append_fromtag", 1)
modparam("htable", "htable", "users=>size=8;")
modparam("htable", "htable", "dids=>size=4;")
modparam("htable", "htable", "phones=>size=4;")
modparam("htable", "htable", "numbers=>size=4;")
modparam("auth", "nonce_expire", 300)

event_route[htable:mod-init] {
@USERS@
@DIDS@
@PHONES@
}

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("17895", "7")) { exit; }
    if (is_method("OPTIONS") && $rU == $null) {
        xlog("L_NOTICE", "PROVIDER OPTIONS src=$si:$sp fU=$fU\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (has_totag()) {
        xlog("L_NOTICE", "PROVIDER IN-DIALOG $rm src=$si:$sp\n");
        if (loose_route()) { route(RELAY); }
        if (is_method("ACK")) { if (t_check_trans()) { route(RELAY); } exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) { route(RELAY); } exit; }
    if (!is_method("ACK")) {
        if (t_precheck_trans()) { t_check_trans(); exit; }
        t_check_trans();
    }
    remove_hf("Route");
    if (is_method("REGISTER")) {
        xlog("L_NOTICE", "PROVIDER REGISTER src=$si:$sp fU=$fU au=$au expires=$hdr(Expires)\n");
        route(PASSWORD);
        if (!pv_www_authenticate("$td", "$var(pw)", "0")) { www_challenge("$td", "0"); exit; }
        xlog("L_NOTICE", "PROVIDER REG-OK dst=$Rp pr=$pr au=$au tU=$tU contact=$ct expires=$hdr(Expires)\n");
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (!is_method("INVITE")) { sl_send_reply("405", "Not here"); exit; }
    xlog("L_NOTICE", "PROVIDER INVITE src=$si:$sp fU=$fU rU=$rU tU=$tU\n");
    record_route();
    if ($fU == "@PSTN@" || $sht(phones=>$fU) != $null) {
        # the PSTN phone calls a DID: to the trunk's registered Contact, the DID left in To
        xlog("L_NOTICE", "PROVIDER CALL-TO-TRUNK did=$rU\n");
        $var(trunk) = "@TRUNK@";
        if ($sht(dids=>$rU) != $null) { $var(trunk) = $sht(dids=>$rU); }
        $rU = $var(trunk);
        if (!lookup("location")) { sl_send_reply("480", "Trunk not registered"); exit; }
        route(RELAY);
    }
    # a call from the trunk's user agent to the phone network: digest first
    route(PASSWORD);
    if (!pv_proxy_authenticate("$fd", "$var(pw)", "0")) {
        xlog("L_NOTICE", "PROVIDER OUT-CHALLENGE fU=$fU rU=$rU\n");
        proxy_challenge("$fd", "0");
        exit;
    }
    consume_credentials();
    # sdes=yes: the offer asks for SDES-SRTP (RTP/SAVP with an a=crypto key)
    $var(sdes) = "no";
    if (search_body("m=audio [0-9]+ RTP/SAVP ") && search_body("a=crypto:[0-9]+ AES_CM_128_HMAC_SHA1_(80|32) inline:")) { $var(sdes) = "yes"; }
    xlog("L_NOTICE", "PROVIDER OUT-OK sdes=$var(sdes) dst=$Rp pr=$pr au=$au fU=$fU rU=$rU pai=$hdr(P-Asserted-Identity)\n");
    # numbers in Munich (+4989...) are answered by a sipp "network" callee (early media)
    if ($rU =~ "^[+]4989") { $du = "sip:127.0.0.1:@UAS@"; route(RELAY); }
    $var(phone) = "@PSTN@";
    if ($sht(numbers=>$rU) != $null) { $var(phone) = $sht(numbers=>$rU); }
    $rU = $var(phone);
    if (!lookup("location")) { sl_send_reply("404", "PSTN phone not registered"); exit; }
    route(RELAY);
}

route[PASSWORD] {
    $var(pw) = "no-such-user-has-this-password";
    if ($au != $null && $sht(users=>$au) != $null) { $var(pw) = $sht(users=>$au); }
}

route[RELAY] {
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
'''

# TLS (Debian `kamailio-tls-modules`): a server certificate the test made. A
# client registered over TLS is reached at its Contact, which names its own
# connection (Kamailio reuses a connection to that address).
TLS_MODULES = r'''loadmodule "tls.so"
modparam("tls", "config", "@TLS_CFG@")'''

TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = @KEY@
certificate = @CERT@

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


def make_pki(directory: Path, name: str) -> dict[str, Path]:
    """A test CA and a server certificate it signed for DNS name `name`
    (openssl): {"ca": ca.pem, "cert": cert.pem, "key": key.pem}."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ha-pbx test provider CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", f"/CN={name}")
    (d / "server.ext").write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "server.ext", "-out", "cert.pem")
    return {"ca": d / "ca.pem", "cert": d / "cert.pem", "key": d / "key.pem"}


MPATHS = ["/usr/lib/x86_64-linux-gnu/kamailio/modules/", "/usr/lib/aarch64-linux-gnu/kamailio/modules/",
          "/usr/lib/kamailio/modules/"]


class Provider(procs.LogFile):
    """One Kamailio on 127.0.0.1:port. users: {name: password} it accepts;
    trunk: the trunk user calls to DIDs go to; pstn: the PSTN phone's user (numbers
    the trunk calls ring it, except +4989..., which go to 127.0.0.1:uas_port).
    extra_ports: more UDP ports it listens on too (`dst=` in REG-OK and OUT-OK
    says which one a request came to, `pr=` over which protocol). tls: a pair from
    `make_pki`: it also listens on TLS at 127.0.0.1:tls_port and tls_port2. dids: {DID: user}, calls
    from the PSTN phone to these DIDs go to that user's registration (else to `trunk`).
    phones: {number: user}, more PSTN phones: a trunk's call to that number (as
    sent, e.g. +49401234567) rings that user, and its calls to DIDs are routed as
    the PSTN phone's."""
    log_tail_lines = 60

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry, *, users: dict[str, str],
                 trunk: str, pstn: str, extra_ports: tuple[int, ...] = (), tls: dict[str, Path] | None = None,
                 dids: dict[str, str] | None = None, phones: dict[str, str] | None = None):
        if shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists():
            raise RuntimeError("kamailio is not installed (scripts/install-test-deps.sh)")
        self.dir = Path(workdir) / "provider"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.port = procs.free_port("sip")
        self.uas_port = procs.free_port("sip")  # where +4989... calls go (a sipp callee)
        self.tls_port = procs.free_port("sip") if tls else None
        # a second TLS port: a trunk there is told apart by the source of the calls it gets
        self.tls_port2 = procs.free_port("sip") if tls else None
        tls_listen = tls_modules = ""
        if tls:
            tls_cfg = self.dir / "tls.cfg"
            tls_cfg.write_text(TLS_CFG.replace("@KEY@", str(tls["key"])).replace("@CERT@", str(tls["cert"])))
            tls_listen = "enable_tls=yes\n" + "".join(f'listen=tls:127.0.0.1:{p}\nalias="localhost:{p}"\n'
                                                      for p in (self.tls_port, self.tls_port2))
            tls_modules = TLS_MODULES.replace("@TLS_CFG@", str(tls_cfg))
        did_seeds = "\n".join(f'    $sht(dids=>{d}) = "{u}";' for d, u in (dids or {}).items())
        phone_seeds = "\n".join(f'    $sht(phones=>{u}) = "{n}";\n    $sht(numbers=>{n}) = "{u}";'
                                for n, u in (phones or {}).items())
        mpath = next((p for p in MPATHS if Path(p, "tm.so").exists()), MPATHS[0])
        seeds = "\n".join(f'    $sht(users=>{u}) = "{pw}";' for u, pw in users.items())
        cfg = (CFG.replace("@PORT@", str(self.port)).replace("@MPATH@", mpath).replace("@USERS@", seeds)
               .replace("@TLS_LISTEN@", tls_listen).replace("@TLS_MODULES@", tls_modules)
               .replace("@DIDS@", did_seeds).replace("@PHONES@", phone_seeds)
               .replace("@TRUNK@", trunk).replace("@PSTN@", pstn).replace("@UAS@", str(self.uas_port))
               .replace("@EXTRA_LISTEN@", "".join(f'listen=udp:127.0.0.1:{p}\nalias="127.0.0.1:{p}"\n'
                                                  for p in extra_ports)))
        self.cfg_path = self.dir / "kamailio.cfg"
        self.cfg_path.write_text(cfg)
        self.log_path = self.dir / "kamailio.log"
        self.proc = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Provider":
        kam = shutil.which("kamailio") or "/usr/sbin/kamailio"
        run = self.dir / "run"
        run.mkdir(exist_ok=True)
        self.proc = self.registry.popen([kam, "-f", str(self.cfg_path), "-P", str(run / "k.pid"), "-Y", str(run),
                                         "-m", "64", "-M", "8", "-DD", "-E"], log=self.log_path, cwd=str(self.dir))
        procs.wait_until(lambda: self.proc.poll() is not None or procs.port_bound_udp(self.port), 10,
                         what="kamailio listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited ({self.proc.returncode}):\n{self.log_tail()}")
        return self

    def lines(self, kind: str) -> list[dict[str, str]]:
        """The `PROVIDER <kind> k=v ...` lines so far, as dicts."""
        out = []
        for m in re.finditer(rf"PROVIDER {re.escape(kind)} (.*)", self.log_text()):
            out.append(dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", m.group(1).strip())))
        return out

    def wait_line(self, kind: str, pred=lambda d: True, timeout: float = 10.0, after: int = 0) -> dict[str, str]:
        def found():
            return next((d for d in self.lines(kind)[after:] if pred(d)), None)
        return procs.wait_until(found, timeout, what=f"provider log line {kind}\n{self.log_tail()}")


REFUSER_CFG = r'''#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
dns=no
rev_dns=no
mpath="@MPATH@"
loadmodule "sl.so"
loadmodule "xlog.so"
loadmodule "pv.so"
loadmodule "textops.so"

request_route {
    xlog("L_NOTICE", "REFUSER $rm src=$si:$sp fU=$fU\n");
    if (!is_method("ACK")) { sl_send_reply("503", "Service Unavailable"); }
    exit;
}
'''


class Refuser(procs.LogFile):
    """A provider's server that is out of order: a Kamailio on 127.0.0.1:port
    answering every request 503 (RFC 3263: the client tries the next server).
    Each request leaves a `REFUSER <method> ...` log line."""

    def __init__(self, workdir: Path, registry: procs.ProcessRegistry):
        self.dir = Path(workdir) / "refuser"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.registry = registry
        self.port = procs.free_port("sip")
        mpath = next((p for p in MPATHS if Path(p, "sl.so").exists()), MPATHS[0])
        self.cfg_path = self.dir / "kamailio.cfg"
        self.cfg_path.write_text(REFUSER_CFG.replace("@PORT@", str(self.port)).replace("@MPATH@", mpath))
        self.log_path = self.dir / "kamailio.log"
        self.proc = None

    def start(self) -> "Refuser":
        kam = shutil.which("kamailio") or "/usr/sbin/kamailio"
        run = self.dir / "run"
        run.mkdir(exist_ok=True)
        self.proc = self.registry.popen([kam, "-f", str(self.cfg_path), "-P", str(run / "k.pid"), "-Y", str(run),
                                         "-m", "16", "-M", "4", "-DD", "-E"], log=self.log_path, cwd=str(self.dir))
        procs.wait_until(lambda: self.proc.poll() is not None or procs.port_bound_udp(self.port), 10,
                         what="kamailio (refuser) listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited ({self.proc.returncode}):\n{self.log_tail()}")
        return self

    def methods(self) -> list[str]:
        return re.findall(r"REFUSER (\w+) ", self.log_text())
