#!/usr/bin/env python3
"""Checks the configuration docs against the forq binary's own help (ctest: docs_check).

    check_docs.py FORQ_BINARY REPO_ROOT

`forq --help` is generated from the one field table in src/config/config.cpp, so it is the source of
truth. Checked, each disagreement printed as one line, exit 1 if there is any:

1. every global option's flag, environment variable and file key appears in
   docs/configuration.md, and the row of its file key in the Fields table names the same
   variable, flag and default as the help;
2. every FORQ_* name in docs/configuration.md, docs/sidecar.md, docs/operations.md and the
   deployment files (docs/deploy/, any Dockerfile, *.service, *.yaml, *.yml or *.env outside
   .git and build directories) is one forq knows: a global option's variable, or a name the code
   itself uses as a string literal (src/, include/: FORQ_CONFIG, FORQ_JOB_ID, ...);
3. every --flag in docs/configuration.md in a table row, a code span or a code block is an option
   of forq or of one of its subcommands (from each subcommand's --help), unless the span is a
   command line of another program (`redis-server --port 0`).

Exit 0: no disagreement; 1: disagreements; 2: the binary or the help could not be read.
Standard library only.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
ENV_AND_KEY = re.compile(r"\(env\s+(FORQ_[A-Z0-9_]+)(?:,\s*file\s+key\s+([A-Za-z0-9_.]+))?\)")
FORQ_NAME = re.compile(r"(?<![A-Za-z0-9_])FORQ_[A-Z0-9_]*[A-Z0-9]")
# A name the code uses: a string literal that is the name, or the name and "=" (FORQ_JOB_ID=).
FORQ_LITERAL = re.compile(r'"(FORQ_[A-Z0-9_]*[A-Z0-9])=?"')
# forq's warning quotes a mistyped variable; a doc showing that warning is not naming a setting.
UNKNOWN_VARIABLE_QUOTE = "unknown environment variable "
SKIP_DIRS = {".git", "node_modules", ".forq", ".cache", "__pycache__"}

problems = []


def problem(text):
    if text not in problems:
        problems.append(text)
        print("docs_check: " + text)


def fatal(text):
    print("docs_check: " + text, file=sys.stderr)
    sys.exit(2)


def run_help(binary, args, required=True):
    """The --help text of `forq ARGS`; None if it fails and is not required."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    try:
        out = subprocess.run([binary, *args, "--help"], capture_output=True, text=True,
                             timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        fatal(f"cannot run {' '.join([binary, *args])} --help: {e}")
    if out.returncode != 0:
        if not required:
            return None
        fatal(f"{' '.join([binary, *args])} --help exited {out.returncode}: "
              f"{out.stderr.strip()}")
    return out.stdout


def sections(help_text):
    """{section name: [entries]}, an entry being one option (or subcommand, positional) with its
    wrapped continuation lines joined: CLI11 puts a long option's description on the next line."""
    out, current = {}, None
    for line in help_text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            header = line.strip()
            current = header[:-1] if header.endswith(":") else None
            if current is not None:
                out.setdefault(current, [])
            continue
        if current is None:
            continue
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        entries = out[current]
        if indent <= 4 or not entries:
            entries.append(stripped)
        else:
            entries[-1] += " " + stripped
    return out


def option_flags(entry):
    return FLAG.findall(entry.split()[0])


class Option:
    def __init__(self, entry):
        self.flags = option_flags(entry)
        m = ENV_AND_KEY.search(entry)
        self.env = m.group(1) if m else None
        self.key = m.group(2) if m else None
        d = re.match(r"\S+\s+[A-Z][A-Z0-9_:]*=(\S+)", entry)
        self.default = d.group(1) if d else None


def read_help(binary):
    """Global options, and every flag of forq and its subcommands."""
    main = sections(run_help(binary, []))
    options = [Option(e) for e in main.get("Options", [])]
    globals_ = [o for o in options if o.env]
    if not globals_:
        fatal("no option in `forq --help` has an (env FORQ_...) note: has the help's format "
              "changed?")
    subcommands = [e.split()[0] for e in main.get("Subcommands", [])]
    if not subcommands:
        fatal("`forq --help` lists no subcommands: has the help's format changed?")
    flags = {f for o in options for f in o.flags}
    todo = [([s], True) for s in subcommands]
    while todo:
        path, required = todo.pop()
        text = run_help(binary, path, required)
        if text is None:
            continue
        sub = sections(text)
        flags.update(f for e in sub.get("Options", []) for f in option_flags(e))
        todo += [(path + [e.split()[0]], True) for e in sub.get("Subcommands", [])]
        # The actions a positional chooses from (forq dead list|retry|purge) get their own
        # --help too: "ACTION TEXT:{list,retry,purge}", or a description "list, retry or purge".
        if required:
            for e in sub.get("Positionals", []):
                todo += [(path + [c], False) for c in choices(e)]
    return globals_, flags


def choices(entry):
    m = re.search(r"\{([a-z][\w-]*(?:,[a-z][\w-]*)+)\}", entry)
    if m:
        return m.group(1).split(",")
    m = re.search(r"\s((?:[a-z][\w-]*, )+[a-z][\w-]* or [a-z][\w-]*)$", entry)
    if m:
        return re.split(r", | or ", m.group(1))
    return []


def words(text, word):
    return re.search(r"(?<![\w.-])" + re.escape(word) + r"(?![\w-]|\.\w)", text) is not None


def cells(row):
    """A table row's cells; an escaped \\| stays inside its cell."""
    parts = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [p.strip() for p in parts]


def check_fields(doc, rel, globals_):
    lines = doc.splitlines()
    for o in globals_:
        flag = o.flags[0] if o.flags else None
        for what, name in (("flag", flag), ("environment variable", o.env)):
            if name and not words(doc, name):
                problem(f"{rel}: {what} {name} (forq --help) is not mentioned")
        if o.key and f"`{o.key}`" not in doc:
            problem(f"{rel}: file key {o.key} (forq --help) is not mentioned as `{o.key}`")

    header_at = next((i for i, l in enumerate(lines)
                      if l.startswith("|") and cells(l)[:1] == ["File key"]), None)
    if header_at is None:
        problem(f"{rel}: no Fields table (a row beginning | File key |)")
        return
    header = [c.lower() for c in cells(lines[header_at])]
    column = {name: header.index(name) if name in header else None
              for name in ("environment", "flag", "default")}
    rows = {}
    for l in lines[header_at + 2:]:
        if not l.startswith("|"):
            break
        c = cells(l)
        rows[c[0].strip("`")] = c
    for o in globals_:
        if not o.key:
            continue
        row = rows.get(o.key)
        if row is None:
            problem(f"{rel}: the Fields table has no row for file key {o.key}")
            continue
        want = {"environment": o.env, "flag": o.flags[0] if o.flags else None,
                "default": o.default}
        for name, value in want.items():
            i = column[name]
            if value is None or i is None or i >= len(row):
                continue
            if row[i] != f"`{value}`":
                problem(f"{rel}: Fields table row {o.key}: {name} is {row[i] or '(empty)'}, "
                        f"forq --help says `{value}`")


def repo_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        for f in filenames:
            yield Path(dirpath) / f


def check_env_names(root, globals_):
    known = {o.env for o in globals_}
    for sub in ("src", "include"):
        for p in (root / sub).rglob("*"):
            if p.is_file() and p.suffix in (".cpp", ".hpp", ".h", ".cc", ".lua"):
                known.update(FORQ_LITERAL.findall(p.read_text(errors="replace")))
    docs = [root / "docs" / n for n in ("configuration.md", "sidecar.md", "operations.md")]
    deploy = []
    for p in repo_files(root):
        rel = p.relative_to(root)
        if (rel.parts[:2] == ("docs", "deploy") or p.name == "Dockerfile"
                or p.name.endswith(".dockerfile")
                or p.suffix in (".service", ".yaml", ".yml", ".env")):
            deploy.append(p)
    for p in docs + sorted(set(deploy) - set(docs)):
        if not p.is_file():
            if p in docs:
                problem(f"{p.relative_to(root)}: missing")
            continue
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for m in FORQ_NAME.finditer(line):
                if line[:m.start()].endswith(UNKNOWN_VARIABLE_QUOTE):
                    continue
                if m.group(0) not in known:
                    problem(f"{p.relative_to(root)}:{n}: {m.group(0)} is not an environment "
                            "variable forq reads (forq --help, or a FORQ_ literal in src/ or include/)")


def foreign_command(code):
    """True for a command line of another program: `redis-server --port 0`."""
    code = code.strip()
    if code.startswith("$ "):
        code = code[2:]
    parts = code.split()
    if len(parts) < 2 or not parts[1].startswith("-"):
        return False
    first = parts[0]
    if "=" in first or not re.fullmatch(r"[\w./-]+", first):
        return False
    return os.path.basename(first) != "forq"


def check_flags(doc, rel, flags):
    fenced = False
    for n, line in enumerate(doc.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            pieces = [] if foreign_command(line) else [line]
        else:
            pieces = [s for s in re.findall(r"`([^`]+)`", line) if not foreign_command(s)]
            if line.startswith("|"):
                # Flags in a table row outside code spans count too.
                pieces.append(re.sub(r"`[^`]+`", " ", line))
        for piece in pieces:
            for f in FLAG.findall(piece):
                if f not in flags:
                    problem(f"{rel}:{n}: {f} is not an option of forq or of any of its "
                            "subcommands (forq [SUBCOMMAND] --help)")


def main():
    if len(sys.argv) != 3:
        print("usage: check_docs.py FORQ_BINARY REPO_ROOT", file=sys.stderr)
        return 2
    binary, root = sys.argv[1], Path(sys.argv[2]).resolve()
    globals_, flags = read_help(binary)
    rel = "docs/configuration.md"
    try:
        doc = (root / rel).read_text()
    except OSError as e:
        fatal(f"cannot read {rel}: {e}")
    check_fields(doc, rel, globals_)
    check_env_names(root, globals_)
    check_flags(doc, rel, flags)
    if problems:
        print(f"docs_check: {len(problems)} disagreement(s) between the docs and {binary}")
        return 1
    print(f"docs_check: ok ({len(globals_)} global options, {len(flags)} flags in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
