"""The rate-limit gate on its own: when it lets a request go, how long a block lasts,
and what it shares through a BlockExchange."""

from __future__ import annotations

import time

import pytest

from gistcache.github.errors import GitHubRateLimited
from gistcache.github.gate import MAX_HINTLESS_WAIT, Block, RateLimitGate
from gistcache.github.parse import MAX_RATE_LIMIT_WAIT


class Exchange:
    """A BlockExchange in memory, counting what it was asked."""

    def __init__(self, shared: Block | None = None) -> None:
        self.shared = shared
        self.loads = 0
        self.saved: list[Block] = []
        self.probes = 0
        self.probe_allowed = True
        self.lifted: list[Block] = []

    async def load(self) -> Block | None:
        self.loads += 1
        return self.shared

    async def save(self, block: Block) -> None:
        self.saved.append(block)

    async def claim_probe(self, every: float) -> bool:
        self.probes += 1
        return self.probe_allowed

    async def lift(self, block: Block) -> None:
        self.lifted.append(block)


def test_an_open_gate_lets_requests_go() -> None:
    gate = RateLimitGate()
    assert gate.blocked_for() == 0
    gate.check()


def test_a_named_wait_blocks_that_long_without_a_strike() -> None:
    gate = RateLimitGate()
    assert gate.limited(42, named=True) == 42
    assert 41 <= gate.blocked_for() <= 42
    assert gate.block().strikes == 0
    with pytest.raises(GitHubRateLimited) as raised:
        gate.check()
    assert 41 <= raised.value.retry_after <= 42


def test_hintless_limits_double_up_to_the_cap_and_an_answer_resets_them() -> None:
    gate = RateLimitGate()
    waits = [gate.limited(60, named=False) for _ in range(6)]
    assert waits == [60, 120, 240, 480, MAX_HINTLESS_WAIT, MAX_HINTLESS_WAIT]
    assert gate.block().strikes == 6
    gate.answered()
    assert gate.block().strikes == 0
    assert gate.limited(60, named=False) == 60


def test_a_block_is_never_shortened() -> None:
    gate = RateLimitGate()
    gate.limited(600, named=True)
    gate.limited(5, named=True)
    assert gate.blocked_for() > 590
    gate.adopt(Block(time.time() + 10, 0))
    assert gate.blocked_for() > 590


def test_a_spent_budget_blocks_until_the_reset_but_never_past_an_hour() -> None:
    gate = RateLimitGate()
    gate.spent_until(time.time() + 300)
    assert 299 <= gate.blocked_for() <= 300
    gate.spent_until(time.time() + 30 * 24 * 3600)
    assert MAX_RATE_LIMIT_WAIT - 1 <= gate.blocked_for() <= MAX_RATE_LIMIT_WAIT
    other = RateLimitGate()
    other.adopt(Block(time.time() + 30 * 24 * 3600, 3))
    assert MAX_RATE_LIMIT_WAIT - 1 <= other.blocked_for() <= MAX_RATE_LIMIT_WAIT
    assert other.block().strikes == 3


async def test_sharing_adopts_what_others_found_and_saves_only_news() -> None:
    until = time.time() + 120
    exchange = Exchange(Block(until, 2))
    gate = RateLimitGate()
    async with gate.shared(exchange):
        assert 119 <= gate.blocked_for() <= 120
        assert gate.block() == Block(until, 2)
    assert exchange.loads == 1
    assert exchange.saved == []  # nothing learnt: nothing written

    exchange = Exchange()
    gate = RateLimitGate()

    async def walk() -> None:
        async with gate.shared(exchange):
            wait = gate.limited(60, named=False)
            raise GitHubRateLimited("limited", wait)

    with pytest.raises(GitHubRateLimited):
        await walk()
    [saved] = exchange.saved  # shared even though the walk failed
    assert saved.strikes == 1
    assert saved == gate.block()


async def test_a_spent_block_is_lifted_when_github_says_requests_remain() -> None:
    answers: list[bool] = []

    async def renewed() -> bool:
        answers.append(True)
        return True

    gate = RateLimitGate(renewed=renewed)
    gate.spent_until(time.time() + 3000)
    exchange = Exchange(gate.block())
    exchange.probe_allowed = False  # another server asked less than a minute ago
    async with gate.shared(exchange):
        assert gate.blocked_for() > 2990
    assert (exchange.probes, answers) == (1, [])

    exchange.probe_allowed = True
    async with gate.shared(exchange):
        gate.check()  # lifted: requests go
    assert answers == [True]
    assert [block.spent for block in exchange.lifted] == [True]


async def test_a_secondary_block_is_never_checked_with_github() -> None:
    async def renewed() -> bool:
        raise AssertionError("GET /rate_limit cannot see a secondary limit")

    gate = RateLimitGate(renewed=renewed)
    gate.limited(600, named=True)
    exchange = Exchange()
    async with gate.shared(exchange):
        assert gate.blocked_for() > 590
    assert exchange.probes == 0


async def test_a_block_another_server_lifted_is_lifted_here() -> None:
    gate = RateLimitGate()
    exchange = Exchange(Block(time.time() + 3000, 0, spent=True))
    async with gate.shared(exchange):
        assert gate.blocked_for() > 2990
    exchange.shared = None  # another server lifted it
    async with gate.shared(exchange):
        gate.check()
