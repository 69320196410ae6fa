"""The MTU probe's black-hole verdict: large probes that vanish beyond what the small ones' loss
explains are a size limit; on a lossy path they vanish like the small ones and prove nothing."""

from __future__ import annotations

from diag.checks.mtu import BLACKHOLE_CHANCE, EchoResult


def test_clean_small_probes_and_lost_large_ones_are_a_black_hole() -> None:
    # The lab's 1400-byte limit: five small probes answered at once, eight large ones lost.
    e = EchoResult(largest_ok=1398, smallest_lost=1405, small_sent=5, big_lost=8)
    assert e.silence_chance() < BLACKHOLE_CHANCE


def test_large_probes_lost_like_the_small_ones_prove_nothing() -> None:
    # 2 of 5 small probes lost: the path may lose 77 %, four lost large ones are a 35 % chance.
    e = EchoResult(largest_ok=1232, smallest_lost=1240, small_sent=5, small_lost=2, big_lost=4)
    assert e.silence_chance() > BLACKHOLE_CHANCE


def test_nothing_lost_large_is_no_black_hole() -> None:
    assert EchoResult(largest_ok=1500, small_sent=2).silence_chance() == 1.0
