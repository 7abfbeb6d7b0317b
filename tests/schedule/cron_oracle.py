#!/usr/bin/env python3
"""forq's cron times against croniter's (ctest: cron_oracle).

    cron_oracle.py PROBE [COUNT] [SEED]

Makes COUNT random cron expressions (5 and 6 fields: values, ranges, steps, lists, month and day
names), asks forq (the PROBE binary, tests/schedule/cron_probe.cpp) and croniter for the next
five instants in UTC after a random start between 2020 and 2035, and prints every disagreement.
Where croniter's get_next skips a match (it has a month-rollover bug), forq's answer stands when
each of its instants matches by croniter's own matcher, croniter.match.
forq writes seconds first in a 6-field expression; croniter last: the oracle moves the field.
Exit 0: they agree on every expression; 1: a disagreement; 2: setup trouble.
"""
import random
import subprocess
import sys
from datetime import datetime, timezone

try:
    from croniter import croniter
except ImportError:
    print("python3-croniter is missing: run scripts/install-deps.sh", file=sys.stderr)
    sys.exit(2)

FIELDS = [  # name, lo, hi, names
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("dom", 1, 31, None),
    ("month", 1, 12, ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                      "nov", "dec"]),
    ("dow", 0, 6, ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
]


def value(rng, lo, hi, names, first):
    """A value from lo to hi, as a number or (a third of the time) its name; `first`: the
    field's lowest value, where names start."""
    v = rng.randint(lo, hi)
    if names and rng.random() < 0.3:
        name = names[v - first]
        return (name.upper() if rng.random() < 0.5 else name), v
    return str(v), v


def item(rng, lo, hi, names):
    kind = rng.random()
    if kind < 0.25:
        return "*"
    if kind < 0.45:
        return value(rng, lo, hi, names, lo)[0]
    if kind < 0.65:
        a, av = value(rng, lo, hi, names, lo)
        b, _ = value(rng, av, hi, names, lo)
        return f"{a}-{b}"
    step = rng.randint(1, max(1, (hi - lo + 1) // 2))
    if kind < 0.8:
        return f"*/{step}"
    if kind < 0.9:
        a = rng.randint(lo, hi)
        b = rng.randint(a, hi)
        return f"{a}-{b}/{step}"
    return f"{rng.randint(lo, hi)}/{step}"


def dow_item_6(rng):
    """A day-of-week item for a 6-field expression that stays within 0-6. croniter's 6-field form
    does not fold 7 into 0 (Sunday) the way its 5-field form does, so `*/1` (0 to 7) would read
    as restricted there and unrestricted in 5 fields; forq reads both forms as the 5-field one."""
    kind = rng.random()
    if kind < 0.3:
        return "*"
    a = rng.randint(0, 6)
    if kind < 0.6:
        return str(a)
    return f"{a}-{rng.randint(a, 6)}" + (f"/{rng.randint(1, 3)}" if rng.random() < 0.4 else "")


def field(rng, lo, hi, names, star_bias):
    if rng.random() < star_bias:
        return "*"
    n = 1 if rng.random() < 0.7 else rng.randint(2, 3)
    return ",".join(item(rng, lo, hi, names) for _ in range(n))


def expression(rng):
    six = rng.random() < 0.3
    parts = []
    for i, (name, lo, hi, names) in enumerate(FIELDS):
        if i == 0 and not six:
            continue
        # Mostly '*' for the slow fields, so most expressions fire often enough to compare.
        bias = {"second": 0.3, "minute": 0.2, "hour": 0.4, "dom": 0.6, "month": 0.7,
                "dow": 0.6}[name]
        if six and name == "dow":
            parts.append("*" if rng.random() < bias else
                         ",".join(dow_item_6(rng) for _ in range(rng.randint(1, 2))))
        else:
            parts.append(field(rng, lo, hi, names, bias))
    return six, parts


def croniter_text(six, parts):
    return " ".join(parts[1:] + parts[:1]) if six else " ".join(parts)


def croniter_times(six, parts, start, n):
    it = croniter(croniter_text(six, parts), datetime.fromtimestamp(start, timezone.utc))
    return [int(it.get_next(float)) for _ in range(n)]


def matches(six, parts, t):
    """croniter's own matcher (to the minute): whether instant t is one the expression names."""
    return croniter.match(croniter_text(six, parts), datetime.fromtimestamp(t, timezone.utc))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    probe = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20261202
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        six, parts = expression(rng)
        start = rng.randint(1577836800, 2051222400)  # 2020 to 2035
        cases.append((six, parts, start))
    lines = "".join(f"{' '.join(p)}\t{s}\t5\n" for _, p, s in cases)
    out = subprocess.run([probe], input=lines, capture_output=True, text=True, check=True)
    answers = out.stdout.splitlines()
    if len(answers) != len(cases):
        print(f"the probe answered {len(answers)} lines for {len(cases)}", file=sys.stderr)
        return 2
    problems = refused = skipped = 0
    for (six, parts, start), got in zip(cases, answers):
        expr = " ".join(parts)
        if got.startswith("refused:"):
            # Only an expression that names no real day may be refused; croniter agrees that
            # nothing comes within years.
            refused += 1
            if "names no day" not in got:
                problems += 1
                print(f"forq refused {expr!r}: {got}")
            continue
        try:
            want = croniter_times(six, parts, start, 5)
        except Exception as e:  # croniter refuses what forq took
            problems += 1
            print(f"croniter refused {expr!r} ({e}); forq gave {got}")
            continue
        mine = [int(x) for x in got.split()]
        if mine == want:
            continue
        # croniter's get_next skips some matches (a day-of-month step rolling over from
        # February): where forq's list differs, each of forq's instants must match by croniter's
        # own matcher, and forq must not miss one that croniter gives before forq's last.
        wrong = [t for t in mine if not matches(six, parts, t)]
        missed = [t for t in want if mine and t <= mine[-1] and t not in mine
                  and matches(six, parts, t)]
        if len(mine) != len(want) or wrong or missed:
            problems += 1
            print(f"{expr!r} after {start}: forq {mine}, croniter {want}")
        else:
            skipped += 1
            print(f"croniter skipped a match of {expr!r} after {start}: forq {mine}, "
                  f"croniter {want} (forq's instants match by croniter.match)")
    print(f"{count} expressions, {refused} refused as naming no day, {skipped} where croniter's "
          f"get_next skipped a match, {problems} disagreements")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
