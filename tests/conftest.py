"""Shared fixtures: small machines for every policy, booted fresh for each test.

`machine` is parametrized over the policy registry (`models.mm.policy.POLICIES`), so a test that
takes it is part of the contract suite every policy must pass. `make_machine` builds any other
configuration (custom geometry, zones layout, kernelcore).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fragsim.models.mm.geometry import MiB
from fragsim.models.mm.machine import Machine, MachineConfig
from fragsim.models.mm.policy import POLICIES

MakeMachine = Callable[..., Machine]


@pytest.fixture
def make_machine() -> MakeMachine:
    """Factory: `make_machine(memory=64 * MiB, policy="vanilla", ...)` -> a booted Machine."""

    def make(memory: int = 64 * MiB, **kwargs: Any) -> Machine:
        return Machine(MachineConfig(memory=memory, **kwargs))

    return make


@pytest.fixture
def mobility_machine() -> Machine:
    """2.6.24 grouping by mobility, 64 MiB in one flat Normal zone, x86_64 geometry."""
    return Machine(MachineConfig(memory=64 * MiB, policy="mobility"))


@pytest.fixture
def vanilla_machine() -> Machine:
    """2.6.20 plain buddy, 64 MiB in one flat Normal zone, x86_64 geometry."""
    return Machine(MachineConfig(memory=64 * MiB, policy="vanilla"))


@pytest.fixture(params=sorted(POLICIES))
def machine(request: pytest.FixtureRequest) -> Machine:
    """A 64 MiB flat machine under each registered policy (the contract suite)."""
    return Machine(MachineConfig(memory=64 * MiB, policy=request.param))
