#!/usr/bin/python3
"""Prints run.sh's markdown tables from a results file (one JSON line per queue and workload).

    /usr/bin/python3 bench/peers/table.py RESULTS.jsonl RATE DURATION
"""
import json
import sys


def main():
    path, rate, duration = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    rows, order = {}, []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r["peer"] not in rows:
                rows[r["peer"]] = {}
                order.append(r["peer"])
            rows[r["peer"]][r.get("workload")] = r

    def ok(r):
        return r is not None and "error" not in r

    def num(v):
        return "–" if v is None else f"{v:,.0f}"

    def cpu(v):
        return "–" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")

    def failed(r):
        return f"failed: {(r or {}).get('error', 'did not run')[:80]}"

    rate_s = f"{rate:g}"
    jobs = next((r["jobs"] for p in order for r in [rows[p].get("drain")] if ok(r)), None)
    forq = rows.get("forq", {}).get("drain")
    forq_rate = forq["jobs_per_s"] if ok(forq) else None

    print(f"\ndrain: {num(jobs)} no-op jobs (~100 B payload) enqueued, then one worker process; "
          f"steady: {rate_s} jobs/s for {duration} s. CPU columns are from the drain (worker "
          "start-up included); the steady run's CPU is in the second table.\n")
    print(f"| peer | drain jobs/s | worker CPU µs/job | redis CPU µs/job | "
          f"pick-up p50 / p99 at {rate_s} jobs/s | forq's drain ratio | verified |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for p in order:
        d, s = rows[p].get("drain"), rows[p].get("steady")
        version = (d if ok(d) else s if ok(s) else {}).get("version") or ""
        cells = [f"{p} {version}".strip()]
        if ok(d):
            cells += [num(d["jobs_per_s"]), cpu(d["worker_cpu_us_per_job"]),
                      cpu(d["redis_cpu_us_per_job"])]
        else:
            cells += [failed(d), "–", "–"]
        if ok(s):
            cell = f"{num(s['pickup_p50_us'])} / {num(s['pickup_p99_us'])} µs"
            # A worker that cannot keep up measures its backlog, not its pick-up.
            if s["jobs_per_s"] < 0.95 * rate:
                cell += f" (fell behind: {num(s['jobs_per_s'])} jobs/s)"
            cells.append(cell)
        else:
            cells.append(failed(s))
        if ok(d) and forq_rate:
            cells.append("1.00×" if p == "forq" else f"{forq_rate / d['jobs_per_s']:,.1f}×")
        else:
            cells.append("–")
        v = [f"{w} {'yes' if r.get('verified') else 'NO'} ({r.get('completed')}/{r.get('jobs')})"
             for w, r in (("drain", d), ("steady", s)) if ok(r)]
        cells.append(", ".join(v) or "–")
        print("| " + " | ".join(cells) + " |")

    print(f"\nsteady at {rate_s} jobs/s for {duration} s (from the producer's start to the last "
          "job): CPU per job\n")
    print("| peer | worker CPU µs/job | redis CPU µs/job | jobs/s achieved |")
    print("|---|---:|---:|---:|")
    for p in order:
        s = rows[p].get("steady")
        if ok(s):
            print(f"| {p} | {cpu(s['worker_cpu_us_per_job'])} | "
                  f"{cpu(s['redis_cpu_us_per_job'])} | {num(s['jobs_per_s'])} |")
        else:
            print(f"| {p} | {failed(s)} | – | – |")

    print("\nsettings:")
    for p in order:
        r = rows[p].get("drain") or rows[p].get("steady")
        if r and r.get("settings"):
            print(f"- {p}: {r['settings']}")


if __name__ == "__main__":
    main()
