"""Random streams: stable keys, one generator per name, independence from other streams."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fragsim.sim.streams import Streams, stream_key


def test_stream_key_is_stable_across_processes() -> None:
    code = "from fragsim.sim.streams import stream_key; print(stream_key('kswapd0'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"}).stdout.strip()
    assert out == str(stream_key("kswapd0"))


def test_same_seed_same_draws_and_get_keeps_position() -> None:
    a, b = Streams(7), Streams(7)
    x = a.get("files").random(5)
    assert np.array_equal(x, b.get("files").random(5))
    assert not np.array_equal(a.get("files").random(5), x)  # the stream moved on
    assert np.array_equal(a.fresh("files").random(5), x)  # fresh starts over


def test_adding_a_stream_leaves_the_others_unchanged() -> None:
    """The contract: a new agent does not shift another agent's draws."""
    lone = Streams(3)
    alone = lone.get("commands").random(100)
    crowd = Streams(3)
    for name in ("net", "dma", "kmalloc", "session", "a-new-agent"):
        crowd.get(name).random(1000)
    assert np.array_equal(crowd.get("commands").random(100), alone)


def test_streams_differ_by_name_and_seed() -> None:
    s = Streams(1)
    assert not np.array_equal(s.fresh("a").random(10), s.fresh("b").random(10))
    assert not np.array_equal(Streams(1).fresh("a").random(10), Streams(2).fresh("a").random(10))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        Streams(seed)  # type: ignore[arg-type]


def test_empty_name() -> None:
    with pytest.raises(ValueError, match="name"):
        stream_key("")
