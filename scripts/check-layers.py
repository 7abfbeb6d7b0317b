#!/usr/bin/env python3
"""Every #include of forq's own code goes down the layer table, never up (ctest: layers_check).

    check-layers.py REPO_ROOT

The stages of src/ and include/forq/, bottom-up, and what each may include (besides itself and
the stages that stage may include, transitively: the table is a stack). docs/architecture.md,
"Layers", is this table in words; change both together.

Each include that goes up is printed as FILE: includes HEADER (STAGE -> STAGE); exit 1 if there
is any that KNOWN does not list, 0 if none. KNOWN holds the back-arrows that existed when the
check was written, each with what fixing it means (all seven are fixed now): the list may only
shrink (a listed arrow that is gone is reported too, so the entry is removed with the fix). Standard library only.
"""

import re
import sys
from pathlib import Path

# Bottom-up. A stage may include the stages below it.
LAYERS = [
    "base",      # src/*.{hpp,cpp}, forq/error.hpp, forq/names.hpp, forq/redis_url.hpp
    "redis",     # src/redis, forq/redis/
    "queue",     # src/queue, src/lua, forq/queue/, forq/client.hpp
    "schedule",  # src/schedule, forq/schedule.hpp
    "handlers",  # src/handlers, forq/handlers.hpp
    "config",    # src/config
    "process",   # src/process: the shared-memory metrics region, process titles
    "http",      # src/http, src/ui
    "worker",    # src/worker
    "master",    # src/master
    "bench",     # src/bench
    "cli",       # src/cli, forq/forq.hpp
]

# Back-arrows allowed for now: (file, header), each with what fixing it means. Empty: the seven
# found when the check was written (issue 29) are fixed; keep it so. The list may only shrink
# (a listed arrow that is gone is reported, so its entry goes with the fix).
KNOWN = set()

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def stage_of_path(rel):
    """The stage of a file of the tree (a path relative to the root), or None."""
    parts = rel.split("/")
    if parts[0] == "include" and len(parts) >= 3 and parts[1] == "forq":
        return stage_of_header("/".join(parts[1:]))
    if parts[0] != "src":
        return None
    if len(parts) == 2:
        return "base"
    folder = parts[1]
    return {"lua": "queue", "ui": "http"}.get(folder, folder if folder in LAYERS else None)


def stage_of_header(name):
    """The stage of an included header as written ("queue/job.hpp", "forq/client.hpp")."""
    parts = name.split("/")
    if parts[0] == "forq":
        if len(parts) == 2:
            return {"client.hpp": "queue", "schedule.hpp": "schedule", "handlers.hpp": "handlers",
                    "forq.hpp": "cli"}.get(parts[1], "base")
        return parts[1] if parts[1] in LAYERS else None
    if len(parts) == 1:
        return None  # a file beside the includer, or a generated one: the includer's own stage
    return {"lua": "queue", "ui": "http"}.get(parts[0], parts[0] if parts[0] in LAYERS else None)


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    found = set()
    bad = []
    for path in sorted(list((root / "src").rglob("*.[ch]pp")) +
                       list((root / "include" / "forq").rglob("*.hpp"))):
        rel = path.relative_to(root).as_posix()
        mine = stage_of_path(rel)
        if mine is None:
            continue
        for header in INCLUDE.findall(path.read_text(encoding="utf-8")):
            theirs = stage_of_header(header)
            if theirs is None or LAYERS.index(theirs) <= LAYERS.index(mine):
                continue
            if (rel, header) in KNOWN:
                found.add((rel, header))
                continue
            bad.append(f"{rel}: includes {header} ({mine} -> {theirs}, up the layer table)")
    for rel, header in sorted(KNOWN - found):
        bad.append(f"{rel}: no longer includes {header}: remove it from KNOWN in {sys.argv[0]}")
    for line in bad:
        print(line)
    print(f"layers: {'ok' if not bad else str(len(bad)) + ' problem(s)'} "
          f"({len(found)} known back-arrows left to fix)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
