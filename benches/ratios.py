#!/usr/bin/env python3
"""Prints every ratio of BENCHMARKS.md from the last `cargo bench` run, as Markdown rows.

Reads criterion's medians from target/criterion (or the folder given), so each ratio compares
the store with its baselines measured in the same run. Usage: python3 benches/ratios.py [dir]
"""
import json
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"

# (group, store bench, baseline bench, label, how to read it)
# "speed": baseline time / store time, so 1.0x is par and higher is better for the store;
# "faster": the same, for baselines the store should beat by far;
# "slower": store time / baseline time, for the page's bound of 3x one BTreeMap range.
ROWS = [
    ("set_u64", "store_set", "dashmap_insert", "`set` vs `DashMap::insert` (target >= 0.9x)", "speed"),
    ("set_u64", "store_heartbeat_noop", "dashmap_insert", "no-op `heartbeat` vs `DashMap::insert`", "speed"),
    ("set_u64", "store_set", "rwlock_hashmap_insert", "`set` vs `RwLock<HashMap>` insert", "speed"),
    ("set_string", "store_set", "dashmap_update", "`set`, `String` ids, vs `DashMap::get_mut`", "speed"),
    ("get_u64", "store_get", "dashmap_get", "`get` vs `DashMap::get` (target >= 1.0x)", "speed"),
    ("get_u64", "store_get_many50", "dashmap_get_many50", "`get_many(50)` vs 50 `DashMap::get`", "speed"),
    ("get_string", "store_get", "dashmap_get", "`get`, `String` ids, vs `DashMap::get`", "speed"),
    ("page1000", "store_page", "dashmap_collect_sort_slice",
     "`page(1000)`, times faster than collect-sort-slice (target > 1000x)", "faster"),
    ("page1000", "store_page", "btreemap_range", "`page(1000)`, times one `BTreeMap` range (target <= 3x)", "slower"),
    ("delta100", "store_since_time", "rwlock_hashmap_scan",
     "`changes_since` 100, by time, times faster than a scan (target > 1000x)", "faster"),
    ("delta100", "store_since_cursor", "rwlock_hashmap_scan",
     "`changes_since` 100, by cursor, times faster than a scan (target > 1000x)", "faster"),
    ("delta100", "store_since_time", "dashmap_scan", "`changes_since` 100, by time, vs a `DashMap` scan", "faster"),
]


def median(*path):
    p = os.path.join(ROOT, *path, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)["median"]["point_estimate"]


def show_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


def sizes(group):
    found = []
    for d in os.listdir(ROOT):
        name, _, n = d.rpartition("_")
        if name == group and n.isdigit():
            found.append(int(n))
    return sorted(found)


def main():
    all_sizes = sorted({n for g, *_ in ROWS for n in sizes(g)})
    print("| figure | " + " | ".join(f"{n:,} users" for n in all_sizes) + " |")
    print("| --- |" + " --- |" * len(all_sizes))
    for group, store, base, label, kind in ROWS:
        cells = []
        for n in all_sizes:
            s, b = median(f"{group}_{n}", store), median(f"{group}_{n}", base)
            if s is None or b is None:
                cells.append("-")
                continue
            ratio = s / b if kind == "slower" else b / s
            digits = 0 if ratio >= 100 else 2
            cells.append(f"{ratio:,.{digits}f}x ({show_time(s)} vs {show_time(b)})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    for kind in ("store_since_time", "store_since_cursor"):
        times = [median(f"delta100_{n}", kind) for n in sizes("delta100")]
        if len(times) > 1 and None not in times:
            print(f"| delta cost, largest / smallest size ({kind}) | {times[-1] / times[0]:.2f}x (target within 2x) |")
    for n in sizes("mixed"):
        for kind in sorted(os.listdir(os.path.join(ROOT, f"mixed_{n}"))):
            threads = sorted(
                int(t) for t in os.listdir(os.path.join(ROOT, f"mixed_{n}", kind)) if t.isdigit()
            )
            rates = [(t, median(f"mixed_{n}", kind, str(t))) for t in threads]
            shown = ", ".join(f"{t}: {1e3 / v:.2f}" for t, v in rates if v)
            print(f"| mixed, {n:,} users, {kind}, M ops/s by threads | {shown} |")


main()
