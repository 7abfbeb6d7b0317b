#!/usr/bin/env python3
"""Every key a forq Lua script touches comes from KEYS (ctest: lua_keys_check).

    check_keys.py LUA_DIR

Redis Cluster runs a script on the node that owns its declared keys, and Redis only guarantees
a script's atomicity over the keys it declared. So in every src/lua/*.lua file:

1. each redis.call / redis.pcall names its key as KEYS[...] or as a variable bound to one
   (`local k = KEYS[2]`, `for _, k in ipairs(KEYS)`); the key is the first argument after the
   command, after XINFO's and XGROUP's subcommand, and after XREADGROUP's STREAMS;
2. no string literal holds a key name (`forq:` or a `{hash tag}`).

Each violation is printed as FILE:LINE: what; exit 1 if there is any, 0 if none. Standard
library only.
"""

import re
import sys
from pathlib import Path

CALL = re.compile(r"redis\.p?call\s*\(")
KEY_EXPR = re.compile(r"^KEYS\[[^\]]+\]$")
BOUND = [re.compile(r"local\s+(\w+)\s*=\s*KEYS\[[^\]]+\]"),
         re.compile(r"for\s+\w+\s*,\s*(\w+)\s+in\s+ipairs\(\s*KEYS\s*\)")]
NO_KEY = {"TIME", "PING", "ECHO"}


def strip_comments(text):
    """Lua source without -- comments (outside strings), line breaks kept."""
    out, i, quote = [], 0, None
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            out.append(c)
        elif text.startswith("--", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def arguments(text, start):
    """The top-level arguments of the call whose '(' ends just before `start`."""
    args, depth, quote, current, i = [], 0, None, "", start
    while i < len(text):
        c = text[i]
        if quote:
            current += c
            if c == "\\":
                current += text[i + 1]
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            current += c
        elif c in "([{":
            depth += 1
            current += c
        elif c in ")]}":
            if depth == 0:
                args.append(current.strip())
                return args
            depth -= 1
            current += c
        elif c == "," and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += c
        i += 1
    return args


def key_argument(args):
    """The argument that names the key, or None for a command without one."""
    if not args:
        return None
    command = args[0].strip("'\"").upper()
    if command in NO_KEY:
        return None
    if command in ("XINFO", "XGROUP"):
        return args[2] if len(args) > 2 else ""
    if command == "XREADGROUP":
        upper = [a.strip("'\"").upper() for a in args]
        return args[upper.index("STREAMS") + 1] if "STREAMS" in upper else ""
    return args[1] if len(args) > 1 else ""


def check(path, problems):
    text = strip_comments(path.read_text())
    bound = {m.group(1) for pattern in BOUND for m in pattern.finditer(text)}
    for literal in re.finditer(r"'[^']*'|\"[^\"]*\"", text):
        if "forq:" in literal.group(0) or re.search(r"\{[^}]*\}", literal.group(0)):
            line = text.count("\n", 0, literal.start()) + 1
            problems.append(f"{path.name}:{line}: a key name in a string: {literal.group(0)}")
    calls = 0
    for call in CALL.finditer(text):
        calls += 1
        line = text.count("\n", 0, call.start()) + 1
        key = key_argument(arguments(text, call.end()))
        if key is None or KEY_EXPR.match(key) or key in bound:
            continue
        problems.append(f"{path.name}:{line}: key {key!r} does not come from KEYS")
    return calls


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    files = sorted(Path(sys.argv[1]).glob("*.lua"))
    if not files:
        print(f"lua_keys_check: no .lua files in {sys.argv[1]}", file=sys.stderr)
        return 2
    problems, calls = [], 0
    for f in files:
        calls += check(f, problems)
    for p in problems:
        print("lua_keys_check: " + p)
    print(f"lua_keys_check: {len(files)} scripts, {calls} calls, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
