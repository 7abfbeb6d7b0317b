#!/usr/bin/env python3
"""Copies forq's protocol (src/protocol/*.json and the producer side's Lua scripts) into the
client packages, which must each carry their own copy to be installable on their own.

    sync-protocol.py [ROOT]           write the copies
    sync-protocol.py --check [ROOT]   exit 1 naming every copy that differs (ctest protocol_copies)

One source, src/; the copies are committed so that `npm install ./clients/node` and
`pip install ./clients/python` work from a checkout. Standard library only.
"""
import sys
from pathlib import Path

FILES = ["protocol/protocol.json", "protocol/vectors.json", "lua/added.lua",
         "lua/enqueue_many.lua", "lua/enqueue_unique.lua", "lua/enqueue_delayed.lua", "lua/job.lua", "lua/results.lua",
         "lua/cancel.lua"]
COPIES = ["clients/node/protocol", "clients/python/forq/protocol"]


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    root = Path(args[0] if args else Path(__file__).resolve().parent.parent)
    differ = []
    for copy in COPIES:
        for f in FILES:
            src, dst = root / "src" / f, root / copy / Path(f).name
            data = src.read_bytes()
            if dst.exists() and dst.read_bytes() == data:
                continue
            if check:
                differ.append(str(dst.relative_to(root)))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(data)
                print("wrote", dst.relative_to(root))
    if differ:
        print("protocol copies differ from src/ (run scripts/sync-protocol.py): " +
              ", ".join(differ))
        return 1
    if check:
        print("protocol copies: %d files in %d packages match src/" % (len(FILES), len(COPIES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
