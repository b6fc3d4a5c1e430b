"""Does the user-mode-linux kernel have ftrace's kmem page events? Boot it once and look.

Boots `linux.uml` (under `setarch -R`, as run_uml.py does) with `probe_tracefs.sh` as init,
which mounts tracefs on /sys/kernel/tracing and lists `events/kmem`. Prints the kernel
release, whether /proc/filesystems lists tracefs, what the mount said, and which of the six
page events (`EVENTS`) exist. Exit code 0 if all six do, 1 if not, 2 if the boot failed.

    python experiments/uml/probe_tracefs.py [--uml PATH]

Debian's linux.uml 6.1.176 (checked on 2026-12-02): `# CONFIG_FTRACE is not set` in
/usr/share/doc/user-mode-linux/config.gz, no tracefs in /proc/filesystems, and the mount
fails because /sys/kernel/tracing does not exist; so no kmem trace can be recorded from it
(experiments/traces/ has a synthetic 6.1 trace instead).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVENTS = ("mm_page_alloc", "mm_page_free", "mm_page_free_batched", "mm_page_alloc_zone_locked",
          "mm_page_pcpu_drain", "mm_page_alloc_extfrag")


def probe(uml: str, out: Path, timeout: float = 120.0) -> dict[str, object]:
    """Boot once; what the guest found (see the module doc)."""
    setarch = shutil.which("setarch")
    prefix = [] if setarch is None else [setarch, os.uname().machine, "-R"]
    cmd = [*prefix, uml, "mem=64M", "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "rw",
           f"init={HERE / 'probe_tracefs.sh'}", f"UML_OUT={out.resolve()}"]
    with (out / "console.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    if not (out / "done").exists():
        raise RuntimeError(f"the guest did not finish; see {out / 'console.log'}")

    def text(name: str) -> str:
        path = out / name
        return path.read_text().strip() if path.exists() else ""

    kmem = set(text("kmem").split())
    return {
        "kernel": text("kernel"),
        "tracefs_in_filesystems": any(line.split()[-1] == "tracefs"
                                      for line in text("filesystems").splitlines() if line),
        "mount": text("mount") or "ok",
        "events": {event: event in kmem for event in EVENTS},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--uml", default="linux.uml", help="the UML kernel (default linux.uml)")
    args = p.parse_args(argv)
    if shutil.which(args.uml) is None:
        print(f"probe_tracefs: error: no UML kernel {args.uml!r} "
              "(apt-get install user-mode-linux)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        try:
            found = probe(args.uml, Path(tmp))
        except RuntimeError as exc:
            print(f"probe_tracefs: error: {exc}", file=sys.stderr)
            return 2
    events = found["events"]
    assert isinstance(events, dict)
    print(f"kernel: {found['kernel']}")
    print(f"tracefs in /proc/filesystems: {found['tracefs_in_filesystems']}")
    print(f"mount -t tracefs: {' '.join(str(found['mount']).split())}")
    for event, present in events.items():
        print(f"kmem/{event}: {'present' if present else 'missing'}")
    return 0 if all(events.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
