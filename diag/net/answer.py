"""What one probe got back (``Answer``) and a train of probes (``Series``): the shared result
types of the TCP, UDP and ICMP probes."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Literal

AnswerStatus = Literal["open", "refused", "timeout", "unreachable", "bad-reply", "error"]


@dataclass(frozen=True)
class Answer:
    """What one probe got: ``open`` (answered), ``refused`` (RST / ICMP port unreachable),
    ``timeout`` (silence), ``unreachable`` (ICMP host/net unreachable), ``bad-reply``."""

    status: AnswerStatus
    rtt_ms: float | None = None
    info: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "open"


def error_status(exc: OSError) -> AnswerStatus:
    """The status an OS error on a probe socket stands for."""
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "refused"
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return "timeout"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return "unreachable"
    return "error"


@dataclass(frozen=True)
class Series:
    """Per-probe RTTs in ms (None: lost), in sending order, and what the answers said."""

    rtts: tuple[float | None, ...] = ()
    infos: tuple[str, ...] = ()
    available: bool = True

    @property
    def answered(self) -> list[float]:
        return [r for r in self.rtts if r is not None]

    @property
    def loss_pct(self) -> float | None:
        if not self.rtts:
            return None
        return round(100.0 * (len(self.rtts) - len(self.answered)) / len(self.rtts), 2)
