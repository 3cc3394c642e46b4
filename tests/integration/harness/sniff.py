"""What crosses the loopback interface: UDP datagrams to a range of ports,
captured with a raw AF_PACKET socket on `lo` (the tests run as root). Used
to look at media on the wire (is it SRTP, not the tone's G.711?) where the
peers themselves only report what they decrypted."""
from __future__ import annotations

import socket
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # each datagram on lo is seen going out and coming in: keep one


class UdpSniffer:
    def __init__(self, ports: range, limit: int = 20000):
        self.ports = ports
        self.limit = limit  # bounded: a long call cannot grow the list without end
        self._packets: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        # 8 MiB, past rmem_max (root): a loaded machine's late reads would drop datagrams
        self._sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._t = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> "UdpSniffer":
        self._t.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING or len(data) < 14 + 20 + 8 or data[14] >> 4 != 4 or data[14 + 9] != 17:
                continue
            ihl = (data[14] & 0x0F) * 4
            udp = 14 + ihl
            dport = int.from_bytes(data[udp + 2:udp + 4], "big")
            if dport in self.ports:
                with self._lock:
                    if len(self._packets) < self.limit:
                        self._packets.append((dport, bytes(data[udp + 8:])))

    def packets(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return list(self._packets)

    def wait_packets(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.packets()) >= n:
                return True
            time.sleep(0.05)
        return len(self.packets()) >= n

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> "UdpSniffer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
