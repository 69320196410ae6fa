"""A slow wire for the lab's WAN: an L2 relay between two interfaces that delays every frame.

The lab's kernel may lack netem, so ``wan-loss-latency`` puts this relay in the middle of the
router-operator link (in the isp namespace): frames are copied between ``--a`` and ``--b`` after
``--delay-ms`` plus a normally distributed ``--jitter-ms``, one way. Frames keep their order per
direction (a frame never overtakes the one before it), so TCP sees delay variation, not
reordering. It is a wire, not a hop: TTLs are untouched. Loss is made by nftables.

CLI: ``python -m diag.lab.wire --a IF --b IF --delay-ms N [--jitter-ms N]``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time
from types import FrameType

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
# Enough for any frame of a 1500-byte MTU link (the ends have GSO off, see diag.lab.plan).
MAX_FRAME = 65536
# Frames waiting on the wire beyond this are dropped, like a full modem buffer (frames).
MAX_QUEUE = 20000


def _open(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def serve(a: str, b: str, delay_s: float, jitter_s: float, rng: random.Random) -> None:
    sa, sb = _open(a), _open(b)
    peer = {sa: sb, sb: sa}
    last_due = {sa: 0.0, sb: 0.0}
    queue: list[tuple[float, int, socket.socket, bytes]] = []
    seq = 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        ready, _, _ = select.select([sa, sb], [], [], timeout)
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(MAX_FRAME)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING or len(queue) >= MAX_QUEUE:
                    continue
                out = peer[s]
                due = time.monotonic() + max(0.0, rng.gauss(delay_s, jitter_s))
                due = max(due, last_due[out])  # no overtaking
                last_due[out] = due
                seq += 1
                heapq.heappush(queue, (due, seq, out, frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:
                pass  # a frame the link refuses is lost, as on a real line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diag.lab.wire", description=__doc__)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)

    def stop(_sig: int, _frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        serve(args.a, args.b, args.delay_ms / 1000, args.jitter_ms / 1000, random.Random(args.seed))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
