"""Writes deploy/seccomp-sandbox.json: Docker's default seccomp profile plus ``pivot_root``.

With CAP_SYS_ADMIN, Docker's default profile already allows what bubblewrap's namespaces and
mounts need (``clone``/``unshare`` with namespace flags, ``mount``, ``umount2``, ``setns``, each
gated on that capability), but not ``pivot_root``, which it refuses to every container; root's
bubblewrap needs it to switch to the sandbox's new root. So the worker's profile is the default
one plus ``pivot_root``, gated on CAP_SYS_ADMIN as the other mount calls are: nothing else
changes. ``docker-default.json`` beside this file is the default profile as Docker 20.10.24
ships it (Debian bookworm's golang-github-docker-docker-dev, profiles/seccomp/default.json;
Apache-2.0, LICENSE beside it). tests/deploy/test_compose.py checks that the written profile is
exactly that plus this one rule.

    python deploy/seccomp/build.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "docker-default.json"
TARGET = HERE.parent / "seccomp-sandbox.json"

SANDBOX_RULE: dict[str, Any] = {
    "names": ["pivot_root"],
    "action": "SCMP_ACT_ALLOW",
    "args": [],
    "comment": "bubblewrap (topdown's sandbox) switches to its new root with pivot_root",
    "includes": {"caps": ["CAP_SYS_ADMIN"]},
    "excludes": {},
}


def sandbox_profile(upstream: dict[str, Any]) -> dict[str, Any]:
    profile = json.loads(json.dumps(upstream))
    profile["syscalls"].append(SANDBOX_RULE)
    return profile


def main() -> None:
    upstream = json.loads(UPSTREAM.read_text())
    TARGET.write_text(json.dumps(sandbox_profile(upstream), indent="\t") + "\n")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
