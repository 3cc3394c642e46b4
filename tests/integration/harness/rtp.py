"""A tiny RTP endpoint: G.711 u-law (PCMU) encode/decode, RTP header, 20 ms pacing.

Used where sipp is the SIP peer but the audio must still be checked by content:
sipp's SDP points at an RtpEndpoint, which sends a tone to the PBX and records
what the PBX relays to it.
"""
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np

RATE = 8000
SAMPLES_PER_PACKET = 160  # 20 ms
PT_PCMU = 0
PT_PCMA = 8

# ---------------------------------------------------------------- G.711 u-law
_BIAS = 0x84
_CLIP = 32635


def _ulaw_encode_one(s: int) -> int:
    sign = 0x80 if s < 0 else 0
    if s < 0:
        s = -s
    if s > _CLIP:
        s = _CLIP
    s += _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (s & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (s >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa)) & 0xFF


def _ulaw_decode_one(u: int) -> int:
    u = ~u & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    s = ((mantissa << 3) + _BIAS) << exponent
    s -= _BIAS
    return -s if sign else s


# lookup tables: 65536 entries for encode (index = sample + 32768), 256 for decode
_ENC = np.array([_ulaw_encode_one(s - 32768) for s in range(65536)], dtype=np.uint8)
_DEC = np.array([_ulaw_decode_one(u) for u in range(256)], dtype=np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples -> u-law bytes."""
    s = np.asarray(samples, dtype=np.int32) + 32768
    return _ENC[np.clip(s, 0, 65535)].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """u-law bytes -> int16 samples."""
    return _DEC[np.frombuffer(data, dtype=np.uint8)]


def _alaw_decode_one(a: int) -> int:
    a ^= 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    s = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return s if a & 0x80 else -s


_ADEC = np.array([_alaw_decode_one(a) for a in range(256)], dtype=np.int16)


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes -> int16 samples."""
    return _ADEC[np.frombuffer(data, dtype=np.uint8)]


def g711_timeline(frames: list[tuple[int, int, bytes]]) -> np.ndarray:
    """Received G.711 payloads (rtp timestamp, payload type 0/8, bytes) laid
    out by their timestamps: a lost packet leaves silence where it belonged,
    a duplicate lands on itself. Other payload types (telephone-event) are
    left out."""
    audio = [(ts, pt, data) for ts, pt, data in frames if pt in (PT_PCMU, PT_PCMA)]
    if not audio:
        return np.zeros(0, dtype=np.int16)
    first = audio[0][0]
    placed = []
    for ts, pt, data in audio:
        offset = (ts - first) % (1 << 32)  # timestamps wrap at 2^32
        if offset >= 1 << 31:
            continue  # reordered from before the first frame
        placed.append((offset, ulaw_decode(data) if pt == PT_PCMU else alaw_decode(data)))
    out = np.zeros(max(o + len(d) for o, d in placed), dtype=np.int16)
    for o, d in placed:
        out[o:o + len(d)] = d
    return out


def tone_samples(hz: float, seconds: float, amplitude: float = 0.35, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


# ---------------------------------------------------------------- RTP packets
@dataclass
class RtpPacket:
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool
    payload: bytes

    def pack(self) -> bytes:
        b0 = 0x80  # V=2, no padding, no extension, no CSRC
        b1 = (0x80 if self.marker else 0) | (self.pt & 0x7F)
        return struct.pack("!BBHII", b0, b1, self.seq & 0xFFFF, self.ts & 0xFFFFFFFF,
                           self.ssrc) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket | None":
        if len(data) < 12:
            return None
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        if b0 >> 6 != 2:
            return None
        cc = b0 & 0x0F
        off = 12 + 4 * cc
        if b0 & 0x10:  # header extension
            if len(data) < off + 4:
                return None
            (_, words) = struct.unpack("!HH", data[off: off + 4])
            off += 4 + 4 * words
        end = len(data)
        if b0 & 0x20 and end > off:  # padding
            end -= data[-1]
        if off > end:
            return None
        return cls(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), data[off:end])


# ---------------------------------------------------------------- endpoint
@dataclass
class Received:
    arrival: float
    src: tuple[str, int]
    pkt: RtpPacket


class RtpEndpoint:
    """Binds a UDP port; sends PCMU (a tone or given samples) every 20 ms to a peer
    that can be set later; records every RTP packet it receives."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self.received: list[Received] = []
        self.sent = 0
        self.peer: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._rx = threading.Thread(target=self._recv_loop, daemon=True)
        self._rx.start()
        self._tx: threading.Thread | None = None
        self._keys: list[tuple[int, int]] = []  # (payload type, event) queued by send_key

    # -- receive
    def _recv_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            p = RtpPacket.parse(data)
            if p is None:
                continue
            with self._lock:
                self.received.append(Received(time.monotonic(), src, p))

    def packets(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def sources(self) -> set[tuple[str, int]]:
        return {r.src for r in self.packets()}

    def decoded(self, pt: int = PT_PCMU) -> np.ndarray:
        """Received PCMU audio, placed by RTP timestamp per SSRC (gaps filled with
        silence), streams concatenated in order of first arrival."""
        pk = [r.pkt for r in self.packets() if r.pkt.pt == pt]
        out: list[np.ndarray] = []
        by_ssrc: dict[int, list[RtpPacket]] = {}
        for p in pk:
            by_ssrc.setdefault(p.ssrc, []).append(p)
        for ssrc, plist in by_ssrc.items():
            base = plist[0].ts
            # unwrap timestamps relative to the first packet
            offs = [((p.ts - base + 2**31) % 2**32) - 2**31 for p in plist]
            lo = min(offs)
            hi = max(o + len(p.payload) for o, p in zip(offs, plist))
            if hi - lo > 10 * 60 * RATE:  # absurd timestamp jumps: fall back to arrival order
                out.append(ulaw_decode(b"".join(p.payload for p in plist)))
                continue
            buf = np.zeros(hi - lo, dtype=np.int16)
            for o, p in zip(offs, plist):
                s = ulaw_decode(p.payload)
                buf[o - lo: o - lo + len(s)] = s
            out.append(buf)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)

    def decoded_float(self) -> np.ndarray:
        return self.decoded().astype(np.float64) / 32768.0

    def wait_packets(self, n: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.received) >= n:
                return True
            time.sleep(0.02)
        return len(self.received) >= n

    # -- send
    def send_key(self, event: int, pt: int) -> None:
        """One key press (RFC 4733 `event`, payload type `pt`) inside the stream
        start_sending() sends, as a phone sends it: its SSRC, its next sequence
        numbers, one timestamp, 100 ms of tone then three end packets; the
        audio pauses meanwhile."""
        with self._lock:
            self._keys.append((pt, event))

    def start_sending(self, samples: np.ndarray, peer: tuple[str, int] | None = None,
                      pt: int = PT_PCMU, loop: bool = True) -> None:
        """Send samples (int16, 8 kHz) as PCMU, 160 samples every 20 ms, to peer
        (or to self.peer, which may be set later; nothing is sent until it is)."""
        if peer:
            self.peer = peer
        payload = ulaw_encode(samples)
        chunks = [payload[i: i + SAMPLES_PER_PACKET]
                  for i in range(0, len(payload) - SAMPLES_PER_PACKET + 1, SAMPLES_PER_PACKET)]
        if not chunks:
            raise ValueError("need at least 20 ms of audio")

        def run() -> None:
            seq = random.randint(0, 0xFFFF)
            ts = random.randint(0, 0xFFFFFFFF)
            ssrc = random.randint(1, 0xFFFFFFFF)
            i = 0
            first = True
            key: list[tuple[bool, bytes]] = []
            key_pt, key_ts = 0, 0
            nxt = time.monotonic()
            while not self._stop.is_set():
                if self.peer is None:
                    time.sleep(0.01)
                    nxt = time.monotonic()
                    continue
                if not key and self._keys:
                    with self._lock:
                        key_pt, event = self._keys.pop(0)
                    key_ts = ts
                    key = [(n == 0, struct.pack("!BBH", event, (0x80 if n >= 5 else 0) | 10, min(n + 1, 5) * 160))
                           for n in range(8)]
                if i >= len(chunks) and not key:
                    if not loop:
                        return
                    i = 0
                if key:
                    marker, payload = key.pop(0)
                    pkt = RtpPacket(key_pt, seq, key_ts, ssrc, marker, payload)
                else:
                    pkt = RtpPacket(pt, seq, ts, ssrc, first, chunks[i])
                try:
                    self.sock.sendto(pkt.pack(), self.peer)
                    self.sent += 1
                except OSError:
                    pass
                first = False
                i += 1
                seq = (seq + 1) & 0xFFFF
                ts = (ts + SAMPLES_PER_PACKET) & 0xFFFFFFFF
                nxt += 0.02
                d = nxt - time.monotonic()
                if d > 0:
                    time.sleep(d)
                elif d < -0.2:  # fell far behind (loaded machine): resync, don't burst
                    nxt = time.monotonic()

        self._tx = threading.Thread(target=run, daemon=True)
        self._tx.start()

    def close(self) -> None:
        self._stop.set()
        if self._tx:
            self._tx.join(timeout=2)
        self._rx.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> "RtpEndpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
