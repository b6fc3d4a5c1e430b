"""Workloads as data: TOML files of typed, documented parameters, checked key by key.

A workload file names its scenario and gives parameters in tables, one per section:

    [workload]
    name = "desktop"
    scenario = "desktop"          # which agents: desktop | stress-highalloc | uml-load
    [machine]
    memory = "1GiB"
    [files]
    reads_per_min = 20.0          # source or rationale in a comment

Sections `machine`, `kernel` and `run` exist for every scenario; the others are the scenario's
(`SECTIONS` of its class), each a frozen dataclass of `models.agents` whose fields (with their
defaults and `doc` metadata) are the allowed keys. A misspelt or unknown key, a value of the
wrong type, or a section the scenario does not use is an error naming the key and what is
allowed. `--set section.key=value` overrides any key in the same way. The flat, dotted form of
the whole config (`flat()`) is what a run records and what its id is a hash of.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import tomllib
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from fragsim.models.agents.base import param
from fragsim.models.agents.desktop import DesktopScenario
from fragsim.models.agents.stress import StressScenario
from fragsim.models.agents.umlload import UmlLoadScenario
from fragsim.models.mm.boost import WATERMARK_BOOST_FACTOR_RANGE
from fragsim.models.mm.geometry import PROFILES, parse_size
from fragsim.models.mm.huge_memory import check_thp_settings
from fragsim.models.mm.policy import get_policy
from fragsim.models.mm.profiles import KERNEL_PROFILES

__all__ = [
    "BUILTIN_WORKLOADS",
    "SCENARIOS",
    "KernelParams",
    "MachineParams",
    "RunParams",
    "Workload",
    "builtin_workload_path",
    "load_workload",
    "parse_override",
    "schema",
    "typed_value",
]

SCENARIOS: dict[str, Any] = {
    "desktop": DesktopScenario,
    "stress-highalloc": StressScenario,
    "uml-load": UmlLoadScenario,
}
BUILTIN_WORKLOADS = ("desktop", "stress-highalloc", "stress-highalloc-vmregress")


@dataclass(frozen=True)
class MachineParams:
    """The machine."""

    memory: int = param(1 << 30, "physical memory", unit="bytes")
    profile: str = param("x86_64", "architecture profile: x86_64, x86 or ppc64")
    layout: str = param("zones", "zones (the profile's DMA/DMA32/Normal/HighMem) or flat")
    swap: int = param(1 << 30, "swap space", unit="bytes")
    writeback_delay_s: float = param(0.5, "seconds a page's writeback I/O takes")


@dataclass(frozen=True)
class KernelParams:
    """The kernel (only `version` differs between the kernels of one comparison)."""

    version: str = param("2.6.24", "kernel preset: 2.6.20, 2.6.23, 2.6.24, 2.6.35, 6.1, 6.15")
    min_free_kbytes: int = param(-1, "/proc/sys/vm/min_free_kbytes; -1: the kernel's "
                                 "default, int_sqrt(lowmem_kbytes * 16)")
    thp_enabled: str = param("never", "/sys/kernel/mm/transparent_hugepage/enabled: always, "
                             "madvise or never; anything but never needs a kernel with "
                             "transparent huge pages (2.6.38+)", added_later=True)
    thp_defrag: str = param("madvise", "/sys/kernel/mm/transparent_hugepage/defrag: always, "
                            "defer, defer+madvise, madvise or never (the GFP mask of a huge "
                            "page fault, 6.1 vma_thp_gfp_mask)", added_later=True)
    watermark_scale_factor: int = param(-1, "/proc/sys/vm/watermark_scale_factor (1..3000, "
                                        "4.6+); -1: the kernel's default (10 on 6.1, none "
                                        "before 4.6)", added_later=True)
    compaction_proactiveness: int = param(-1, "/proc/sys/vm/compaction_proactiveness (0..100, "
                                          "5.9+; 0 turns proactive compaction off); -1: the "
                                          "kernel's default (20 on 6.1); needs a kernel with "
                                          "kcompactd", added_later=True)
    watermark_boost_factor: int = param(-1, "/proc/sys/vm/watermark_boost_factor (0..2147483647, "
                                        "5.0+; 0 turns boosting off); -1: the kernel's default "
                                        "(15000 on 6.1, none before 5.0)", added_later=True)
    defrag_mode: int = param(0, "/proc/sys/vm/defrag_mode (6.15+): 1 makes every allocation "
                             "avoid fragmenting pageblocks until the slow path's last retry; "
                             "0 (the default) or 1", added_later=True)


@dataclass(frozen=True)
class RunParams:
    """The run."""

    days: float = param(3.0, "simulated uptime in days (desktop)")
    seed: int = param(0, "root seed of every random stream")
    probe_interval_h: float = param(6.0, "hugepages_get every this many hours (0: only at "
                                    "the end); desktop only")
    sample_interval_h: float = param(1.0, "samples of buddyinfo, vmstat and page kinds")
    census_interval_h: float = param(6.0, "pageblock census samples")
    map_interval_h: float = param(24.0, "memory map (one `pageblock` event per pageblock) "
                                  "every this many hours and at the end (0: only at the end)")


_COMMON: dict[str, type] = {"machine": MachineParams, "kernel": KernelParams,
                            "run": RunParams}


@dataclass(frozen=True)
class Workload:
    """A loaded, checked workload: its name, scenario and one params object per section."""

    name: str
    scenario: str
    sections: dict[str, Any]
    source: str = ""
    description: str = ""

    @property
    def machine(self) -> MachineParams:
        m: MachineParams = self.sections["machine"]
        return m

    @property
    def kernel(self) -> KernelParams:
        k: KernelParams = self.sections["kernel"]
        return k

    @property
    def run(self) -> RunParams:
        r: RunParams = self.sections["run"]
        return r

    def flat(self) -> dict[str, Any]:
        """Every parameter as `section.key: value`, sections and keys in schema order."""
        out: dict[str, Any] = {"workload.name": self.name, "workload.scenario": self.scenario}
        for section, obj in self.sections.items():
            for f in fields(obj):
                out[f"{section}.{f.name}"] = getattr(obj, f.name)
        return out

    def config_id(self) -> str:
        """A stable id of the whole config, seed included (12 hex digits of SHA-1). Keys
        marked `added_later` count only when they differ from their default."""
        flat = self.flat()
        for section, obj in self.sections.items():
            for f in fields(obj):
                if f.metadata.get("added_later") and getattr(obj, f.name) == f.default:
                    del flat[f"{section}.{f.name}"]
        text = json.dumps(flat, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def with_values(self, values: dict[str, Any]) -> Workload:
        """A copy with `section.key` values replaced (already typed)."""
        sections = dict(self.sections)
        by_section: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            section, _, name = key.partition(".")
            by_section.setdefault(section, {})[name] = value
        for section, changes in by_section.items():
            sections[section] = replace(sections[section], **changes)
        return replace(self, sections=sections)


def schema(scenario: str) -> dict[str, type]:
    """Section name -> params dataclass for `scenario`."""
    try:
        cls = SCENARIOS[scenario]
    except KeyError:
        raise ValueError(f"unknown scenario {scenario!r}: allowed are "
                         f"{', '.join(SCENARIOS)}") from None
    return {**_COMMON, **cls.SECTIONS}


def _suggest(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _typed(key: str, value: Any, f: dataclasses.Field[Any], where: str) -> Any:
    """`value` as field `f`'s type, or ValueError naming the key and the expected type."""
    kind: type = type(f.default)
    if f.metadata.get("unit") == "bytes":
        if value in (0, "0"):
            return 0
        try:
            return parse_size(value if isinstance(value, int | str) else str(value))
        except ValueError:
            raise ValueError(f"{where}: {key} = {value!r} is not a size (e.g. 512MiB, 4GiB, "
                             "or a byte count)") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise ValueError(f"{where}: {key} = {value!r} is not a boolean (true or false)")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: {key} = {value!r} is not an integer")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: {key} = {value!r} is not a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{where}: {key} = {value!r} is not a string")
    raise ValueError(f"{where}: {key} has an unsupported type")


def _section_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in fields(cls)}


def parse_override(text: str, sections: dict[str, type], where: str = "--set") -> tuple[str, Any]:
    """`section.key=value` -> (key, typed value); ValueError naming what is wrong."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{where} {text!r} is not KEY=VALUE (e.g. files.reads_per_min=30)")
    return key, typed_value(key, raw.strip(), sections, where)


def typed_value(key: str, value: Any, sections: dict[str, type], where: str) -> Any:
    """`value` (a TOML value or a string) as the type of dotted `key`; ValueError naming the
    key, with the closest allowed key, when the key is unknown or the value of another type."""
    section, dot, name = key.partition(".")
    if not dot or section not in sections:
        allowed = sorted(sections)
        raise ValueError(f"{where} {key!r}: unknown section {section!r}"
                         f"{_suggest(section, allowed)}; allowed are {', '.join(allowed)}")
    fs = _section_fields(sections[section])
    if name not in fs:
        allowed = sorted(fs)
        raise ValueError(f"{where} {key!r}: unknown key {name!r} of [{section}]"
                         f"{_suggest(name, allowed)}; allowed are {', '.join(allowed)}")
    return _typed(key, value, fs[name], where)


def _check(workload: Workload) -> None:
    """Values that have a fixed set of choices or a range."""
    k = workload.kernel
    if k.version not in KERNEL_PROFILES:
        raise ValueError(f"kernel.version {k.version!r} is unknown: allowed are "
                         f"{', '.join(KERNEL_PROFILES)}")
    check_thp_settings(k.thp_enabled, k.thp_defrag,
                       bool(KERNEL_PROFILES[k.version].get("thp", False)), k.version, "kernel.")
    if k.watermark_scale_factor != -1:
        if "watermark_scale_factor" not in KERNEL_PROFILES[k.version]:
            raise ValueError(f"kernel.watermark_scale_factor {k.watermark_scale_factor}: kernel "
                             f"{k.version} has no watermark_scale_factor (4.6 or later): "
                             "allowed is -1")
        if not 1 <= k.watermark_scale_factor <= 3000:
            raise ValueError(f"kernel.watermark_scale_factor {k.watermark_scale_factor} is out "
                             "of range: allowed 1..3000 (or -1 for the kernel's default)")
    if k.compaction_proactiveness != -1:
        if not KERNEL_PROFILES[k.version].get("kcompactd", False):
            raise ValueError(f"kernel.compaction_proactiveness {k.compaction_proactiveness}: "
                             f"kernel {k.version} has no kcompactd and no proactive compaction "
                             "(5.9 or later): allowed is -1")
        if not 0 <= k.compaction_proactiveness <= 100:
            raise ValueError(f"kernel.compaction_proactiveness {k.compaction_proactiveness} is "
                             "out of range: allowed 0..100 (or -1 for the kernel's default)")
    if k.watermark_boost_factor != -1:
        if "watermark_boost_factor" not in KERNEL_PROFILES[k.version]:
            raise ValueError(f"kernel.watermark_boost_factor {k.watermark_boost_factor}: kernel "
                             f"{k.version} has no watermark boosting (5.0 or later): "
                             "allowed is -1")
        lo, hi = WATERMARK_BOOST_FACTOR_RANGE
        if not lo <= k.watermark_boost_factor <= hi:
            raise ValueError(f"kernel.watermark_boost_factor {k.watermark_boost_factor} is out "
                             f"of range: allowed {lo}..{hi} (or -1 for the kernel's default)")
    if k.defrag_mode != 0:
        if k.defrag_mode != 1:
            raise ValueError(f"kernel.defrag_mode {k.defrag_mode} is out of range: allowed 0, 1")
        if not get_policy(KERNEL_PROFILES[k.version]["policy"]).has_defrag_mode:
            raise ValueError(f"kernel.defrag_mode 1: kernel {k.version} has no vm.defrag_mode "
                             "(6.15 or later): allowed is 0")
    if k.min_free_kbytes < -1:
        raise ValueError(f"kernel.min_free_kbytes {k.min_free_kbytes} must be >= 0 (or -1 "
                         "for the kernel's default)")
    m = workload.machine
    if m.profile not in PROFILES:
        raise ValueError(f"machine.profile {m.profile!r} is unknown: allowed are "
                         f"{', '.join(sorted(PROFILES))}")
    if m.layout not in ("zones", "flat"):
        raise ValueError(f"machine.layout {m.layout!r} is unknown: allowed are zones, flat")
    r = workload.run
    if not r.days > 0:
        raise ValueError(f"run.days {r.days} must be positive")
    if r.seed < 0:
        raise ValueError(f"run.seed {r.seed} must be >= 0")
    for name in ("probe_interval_h", "sample_interval_h", "census_interval_h",
                 "map_interval_h"):
        if getattr(r, name) < 0:
            raise ValueError(f"run.{name} {getattr(r, name)} must be >= 0")


def builtin_workload_path(name: str) -> Path:
    """The TOML file of a built-in workload (package data of `fragsim.experiments`)."""
    ref = resources.files("fragsim.experiments").joinpath("workloads", f"{name}.toml")
    return Path(str(ref))


def load_workload(spec: str, overrides: dict[str, Any] | None = None,
                  sets: list[str] | None = None, text: str | None = None) -> Workload:
    """Load a workload by built-in name (`desktop`), path, or TOML `text` (with `spec` naming
    its source), apply typed `overrides` (`section.key: value`) and `--set` strings."""
    if text is None:
        if spec in BUILTIN_WORKLOADS:
            path = builtin_workload_path(spec)
        else:
            path = Path(spec)
            if not path.suffix == ".toml" and not path.exists():
                raise ValueError(f"unknown workload {spec!r}: use one of "
                                 f"{', '.join(BUILTIN_WORKLOADS)} or a .toml file")
        text = path.read_text(encoding="utf-8")
        where = str(path)
    else:
        where = spec
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from None
    head = data.pop("workload", None)
    if not isinstance(head, dict) or "scenario" not in head:
        raise ValueError(f"{where}: needs a [workload] table with scenario = "
                         f"{' or '.join(repr(s) for s in SCENARIOS)}")
    unknown_head = sorted(set(head) - {"name", "scenario", "description"})
    if unknown_head:
        raise ValueError(f"{where}: unknown key workload.{unknown_head[0]}: allowed are "
                         "name, scenario, description")
    scenario = str(head["scenario"])
    sections = schema(scenario)
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in sections:
            allowed = sorted(sections)
            raise ValueError(f"{where}: unknown section [{section}]{_suggest(section, allowed)}"
                             f" for scenario {scenario}; allowed are {', '.join(allowed)}")
        if not isinstance(table, dict):
            raise ValueError(f"{where}: {section} must be a table ([{section}])")
        fs = _section_fields(sections[section])
        for name, value in table.items():
            if name not in fs:
                allowed = sorted(fs)
                raise ValueError(f"{where}: unknown key {section}.{name}"
                                 f"{_suggest(name, allowed)}; allowed keys of [{section}] are "
                                 f"{', '.join(allowed)}")
            values[f"{section}.{name}"] = _typed(f"{section}.{name}", value, fs[name], where)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if section not in sections or name not in _section_fields(sections[section]):
            raise ValueError(f"unknown key {key!r} for scenario {scenario}")
        values[key] = value
    for text_set in sets or []:
        key, value = parse_override(text_set, sections)
        values[key] = value
    base = Workload(name=str(head.get("name", Path(spec).stem)), scenario=scenario,
                    sections={s: cls() for s, cls in sections.items()}, source=where,
                    description=str(head.get("description", "")))
    workload = base.with_values(values)
    _check(workload)
    return workload
