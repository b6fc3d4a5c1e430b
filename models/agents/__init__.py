"""Workload agents and daemons: SimPy processes that use memory as a real machine's users do.

Beside the allocator core (`fragsim.models.mm`), never inside it: agents import the core, the
core imports nothing of theirs. `base` defines the kernel interface they call and the owner id
spaces; `files`, `processes`, `kernelmem`, `user`, `cron`, `daemons` the agents; `desktop`
and `stress` the scenarios that put them together.
"""

__all__: list[str] = []
