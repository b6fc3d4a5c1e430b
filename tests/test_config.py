"""Workload files: every key checked, typed, overridable; the flat config and its id."""

from __future__ import annotations

from pathlib import Path

import pytest

from fragsim.sim.config import (
    BUILTIN_WORKLOADS,
    builtin_workload_path,
    load_workload,
    parse_override,
    schema,
)


@pytest.mark.parametrize("name", BUILTIN_WORKLOADS)
def test_builtin_workloads_load(name: str) -> None:
    w = load_workload(name)
    assert w.name == name and name.startswith(w.scenario)
    assert builtin_workload_path(name).exists()
    flat = w.flat()
    assert flat["workload.scenario"] == w.scenario
    assert all("." in k for k in flat)


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "w.toml"
    p.write_text(text)
    return str(p)


def test_unknown_key_names_key_and_allowed(tmp_path: Path) -> None:
    path = _write(tmp_path, '[workload]\nscenario = "desktop"\n[files]\nraeds_per_min = 3\n')
    with pytest.raises(ValueError, match=r"files\.raeds_per_min.*did you mean 'reads_per_min'"):
        load_workload(path)


def test_unknown_section(tmp_path: Path) -> None:
    path = _write(tmp_path, '[workload]\nscenario = "stress-highalloc"\n[apps]\nper_hour = 3\n')
    with pytest.raises(ValueError, match=r"unknown section \[apps\]"):
        load_workload(path)


def test_wrong_type_and_missing_scenario(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        load_workload(_write(tmp_path, '[workload]\nscenario="desktop"\n[run]\ndays="x"\n'))
    with pytest.raises(ValueError, match=r"needs a \[workload\] table"):
        load_workload(_write(tmp_path, '[machine]\nmemory = "1GiB"\n'))
    with pytest.raises(ValueError, match="not valid TOML"):
        load_workload(_write(tmp_path, '[workload\n'))
    with pytest.raises(ValueError, match="unknown scenario"):
        load_workload(_write(tmp_path, '[workload]\nscenario = "laptop"\n'))


def test_sizes_and_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, '[workload]\nscenario="desktop"\n[machine]\nmemory="512MiB"\n')
    w = load_workload(path, {"run.seed": 4}, ["files.reads_per_min=7.5", "machine.swap=0"])
    assert w.machine.memory == 512 << 20
    assert w.run.seed == 4 and w.machine.swap == 0
    assert w.sections["files"].reads_per_min == 7.5


def test_parse_override_errors() -> None:
    sections = schema("desktop")
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        parse_override("files.reads_per_min", sections)
    with pytest.raises(ValueError, match="unknown section 'file'"):
        parse_override("file.x=1", sections)
    with pytest.raises(ValueError, match="is not an integer"):
        parse_override("run.seed=1.5", sections)
    with pytest.raises(ValueError, match="is not a boolean"):
        parse_override("updatedb.enabled=maybe", sections)
    assert parse_override("updatedb.enabled=false", sections) == ("updatedb.enabled", False)


def test_checked_values() -> None:
    with pytest.raises(ValueError, match="kernel.version '2.6.19' is unknown"):
        load_workload("desktop", {"kernel.version": "2.6.19"})
    with pytest.raises(ValueError, match="run.days"):
        load_workload("desktop", {"run.days": 0.0})
    with pytest.raises(ValueError, match="machine.layout"):
        load_workload("desktop", sets=["machine.layout=weird"])


def test_config_id_stable_and_seed_sensitive() -> None:
    a = load_workload("desktop", {"run.seed": 1})
    b = load_workload("desktop", {"run.seed": 1})
    c = load_workload("desktop", {"run.seed": 2})
    assert a.config_id() == b.config_id() != c.config_id()
    assert len(a.config_id()) == 12


def test_every_parameter_is_documented() -> None:
    from dataclasses import fields

    for scenario in ("desktop", "stress-highalloc"):
        for section, cls in schema(scenario).items():
            for f in fields(cls):
                assert f.metadata.get("doc"), f"{section}.{f.name} has no doc"
