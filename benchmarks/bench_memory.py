"""The memory engine's batch mode against DuckDB (and the old whole-list path) on the benchmark shop.

    python benchmarks/bench_memory.py [--customers 200000] [--dir DIR (default: crmrules-scale in the system temp dir)] [--no-old]

Generates (or reuses) the seeded shop of bench_scale.py as Parquet (customers, 5× orders, ~1.5 items per
order, 20× events), then runs the demo rule file (examples/shop/shop.crm: every segment, as `crmrules run`
evaluates them) as of 2026-06-30, each run in a child process so that its wall time, CPU time (its worker
processes included) and peak RSS are its own:

1. `crmrules run --backend memory`: customers streamed in chunks, partitions on every core
   (backends/memory_batches.py);
2. `crmrules run --backend duckdb` on the same files, the baseline of the ratios;
3. the streamed engine reading the rows itself (unless `--no-rows`): `CustomerChunks(fold=False)`, what
   `--backend memory` does when DuckDB cannot fold some aggregate (partitions in a pool of workers, rows
   turned into Python tuples and aggregated by the generated code);
4. the old path (unless `--no-old`): one prepared dict per customer for the whole base, then the memory
   engine over the list (what `--backend memory` did before).

Run 1 folds each customer's rows in DuckDB (backends/memory_folded.py): one query gives every
customer-level aggregate and ranking the rules read, and the generated code evaluates the rules over
them.

Prints customers/s and peak RSS of each, the ratios against DuckDB, and checks that every run found the
same members as DuckDB. Target of issue 14: at least 50,000 customers/s for the streaming engine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import AS_OF, generate

RULES = Path(__file__).resolve().parent.parent / "examples" / "shop" / "shop.crm"

OLD_PATH = """
import json, sys
import crmrules
from crmrules.backends.customer_data import prepare_customer
from crmrules.backends.memory import MemoryBackend
from crmrules.backends.sql import transfer
from crmrules.backends.sql.datadir import load_directory
from crmrules.context import evaluation_context

rules = crmrules.load([sys.argv[1]])
names = [name for name, _ in rules.segments]
program = rules.program_for(segments=names)
loaded = load_directory(sys.argv[2], program.schema)
people = [prepare_customer(person, program.schema) for person in transfer.customers(loaded, program.schema)]
members = MemoryBackend().members(program, people, names, evaluation_context(sys.argv[3], program.schema))
json.dump({"segments": {name: {"count": len(ids), "members": ids} for name, ids in members.items()}},
          sys.stdout)
"""

ROWS_PATH = """
import json, sys
import crmrules
from crmrules.backends.memory import MemoryBackend
from crmrules.backends.memory_batches import CustomerChunks
from crmrules.backends.sql.datadir import load_directory
from crmrules.context import evaluation_context

rules = crmrules.load([sys.argv[1]])
names = [name for name, _ in rules.segments]
program = rules.program_for(segments=names)
chunks = CustomerChunks(load_directory(sys.argv[2], program.schema), program.schema, fold=False)
members = MemoryBackend().members(program, chunks, names, evaluation_context(sys.argv[3], program.schema))
json.dump({"segments": {name: {"count": len(ids), "members": ids} for name, ids in members.items()}},
          sys.stdout)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "crmrules-scale"),
                        help="where the generated shops are kept and reused (shared with bench_scale.py)")
    parser.add_argument("--no-rows", action="store_true", help="skip the engine reading the rows itself")
    parser.add_argument("--no-old", action="store_true", help="skip the old whole-list path (slow, large)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    shop = Path(args.dir) / str(args.customers)
    generate(shop, args.customers, "4GB")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    crmrules = [sys.executable, "-m", "crmrules", "run", str(RULES), "--data", str(shop), "--as-of", AS_OF,
                "--format", "json", "--members"]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        old, rows = Path(scratch) / "old_path.py", Path(scratch) / "rows_path.py"
        old.write_text(OLD_PATH)
        rows.write_text(ROWS_PATH)
        commands = [("memory (streamed, rows folded)", [*crmrules, "--backend", "memory"]),
                    ("duckdb", [*crmrules, "--backend", "duckdb"])]
        if not args.no_rows:
            commands.append(("memory (rows read in Python)", [sys.executable, str(rows), str(RULES), str(shop), AS_OF]))
        if not args.no_old:
            commands.append(("old path (a dict per customer)", [sys.executable, str(old), str(RULES), str(shop), AS_OF]))
        runs, members = [], {}
        for label, command in commands:
            output = Path(scratch) / "members.json"
            runs.append(measured(label, command, args.timeout, output))
            members[label] = _members(output)
    report(args.customers, runs, members)


def measured(label: str, command: list[str], timeout: float, output: Path) -> dict:
    """Run one command in a child process, its stdout into `output`: wall seconds, CPU seconds (its own and
    its worker processes', from `os.wait4`) and peak RSS in MiB (the largest of them), and how it ended."""
    with output.open("wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err)
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip().splitlines()[-3:]
    result = {"label": label, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
              "rss_mib": usage.ru_maxrss / 1024, "status": child.returncode}
    print(f"  {label}: {seconds:.1f} s ({result['cpu']:.1f} s cpu), peak RSS {result['rss_mib']:,.0f} MiB, "
          f"exit {child.returncode}", flush=True)
    for line in stderr if child.returncode else []:
        print(f"    {line}", flush=True)
    return result


def _members(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {name: entry["members"] for name, entry in found["segments"].items()}


def report(customers: int, runs: list[dict], members: dict[str, dict | None]) -> None:
    print()
    width = max(len(run["label"]) for run in runs)
    print(f"{'run':{width}}  {'wall s':>7}  {'cpu s':>7}  {'customers/s':>11}  {'per cpu s':>10}  "
          f"{'peak RSS MiB':>12}  exit")
    for run in runs:
        print(f"{run['label']:{width}}  {run['seconds']:7.1f}  {run['cpu']:7.1f}  {customers / run['seconds']:11,.0f}  "
              f"{customers / run['cpu']:10,.0f}  {run['rss_mib']:12,.0f}  {run['status']}")
    memory, duckdb = runs[0], runs[1]
    print(f"streamed memory ÷ duckdb: wall {memory['seconds'] / duckdb['seconds']:.1f}×, "
          f"cpu {memory['cpu'] / duckdb['cpu']:.1f}×, peak RSS {memory['rss_mib'] / duckdb['rss_mib']:.2f}×")
    for other in runs[2:]:
        print(f"{other['label']} ÷ streamed memory: wall {other['seconds'] / memory['seconds']:.1f}×, "
              f"cpu {other['cpu'] / memory['cpu']:.1f}×, peak RSS {other['rss_mib'] / memory['rss_mib']:.1f}×")
    rate = customers / memory["seconds"]
    print(f"streamed memory engine: {rate:,.0f} customers/s wall, {customers / memory['cpu']:,.0f} per CPU second "
          f"(target ≥ 50,000/s: {'met' if rate >= 50_000 else 'MISSED'})")
    baseline = members["duckdb"]
    for label, found in members.items():
        if label != "duckdb":
            same = found is not None and found == baseline
            print(f"members of {label} {'equal' if same else 'DIFFER FROM'} duckdb's")
            if not same:
                raise SystemExit(1)


if __name__ == "__main__":
    main()
