"""Named random streams: one `numpy.random.Generator` per agent, spawned from one root seed.

Every agent and daemon draws from its own stream, made from the run's root `SeedSequence` and a
*stable key* derived from the stream's name (a SHA-256 of the name, not Python's salted
`hash`). So:

- the same seed and name give the same draws in every process and on every worker;
- adding, removing or renaming one agent leaves every other agent's draws unchanged (streams are
  not spawned in order, so no stream's position depends on how many came before it);
- two kernels run on one seed see the same workload draws; where their runs differ, it is
  because the allocator answered differently, not because the dice changed.

`Streams.get(name)` returns the same Generator object on every call for one name (an agent keeps
its position); `Streams.fresh(name)` makes a new Generator at the start of that stream.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Streams", "stream_key"]


def stream_key(name: str) -> tuple[int, ...]:
    """The spawn key of stream `name`: four 32-bit words of SHA-256(name), stable everywhere."""
    if not name:
        raise ValueError("a random stream needs a non-empty name")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


class Streams:
    """The random streams of one run: `get(name)` per agent, all from `SeedSequence(seed)`."""

    def __init__(self, seed: int) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed {seed!r} must be a non-negative integer")
        self.seed = seed
        self._streams: dict[str, np.random.Generator] = {}

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The `SeedSequence` of stream `name`: the root entropy with the name's stable key."""
        return np.random.SeedSequence(self.seed, spawn_key=stream_key(name))

    def fresh(self, name: str) -> np.random.Generator:
        """A new Generator at the start of stream `name` (PCG64)."""
        return np.random.Generator(np.random.PCG64(self.sequence(name)))

    def get(self, name: str) -> np.random.Generator:
        """The run's Generator for `name`, created on first use and kept."""
        rng = self._streams.get(name)
        if rng is None:
            rng = self._streams[name] = self.fresh(name)
        return rng

    def names(self) -> list[str]:
        """Names of the streams handed out so far, in order of first use."""
        return list(self._streams)
