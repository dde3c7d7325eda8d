#!/usr/bin/env python3
"""Print the declared minimum version of every runtime dependency as ``name==floor``.

Reads ``[project].dependencies`` of common/, isograph/ and perturbfm/ (plus the test tools
of their ``dev`` extras, pytest and hypothesis) and turns each ``>=X`` into ``==X``, so that
``make floors`` installs exactly the oldest versions we claim to support. Exact pins stay
as they are; torch (pinned by the Makefile) and the first-party packages are left out.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "isograph", "perturbfm")
SKIP = {"omicsrun", "isograph", "perturbfm", "torch"}
TEST_TOOLS = {"pytest", "hypothesis"}
_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(>=|==)\s*([^,;\s]+)\s*$")


def floor_pins() -> list[str]:
    pins: dict[str, str] = {}
    for package in PACKAGES:
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        requirements = list(project.get("dependencies", []))
        requirements += [
            r
            for r in project.get("optional-dependencies", {}).get("dev", [])
            if re.split(r"[<>=\[ ]", r, maxsplit=1)[0] in TEST_TOOLS
        ]
        for requirement in requirements:
            match = _SPEC.match(requirement)
            name = re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0]
            if name in SKIP:
                continue
            if match is None:
                sys.exit(f"floor_pins: cannot read a floor from {requirement!r} in {package}/pyproject.toml")
            full, _, version = match.groups()
            key = name.lower()
            if key in pins and pins[key] != f"{full}=={version}":
                # the highest floor declared anywhere is the one that holds for the whole repo
                old = pins[key].split("==")[1]
                if tuple(map(int, re.findall(r"\d+", version))) <= tuple(map(int, re.findall(r"\d+", old))):
                    continue
            pins[key] = f"{full}=={version}"
    return sorted(pins.values())


if __name__ == "__main__":
    print(" ".join(floor_pins()))
