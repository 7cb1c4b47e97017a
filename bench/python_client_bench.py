#!/usr/bin/env python3
"""Python client vs C++ client against the same peakknn-server, same run.

Starts peakknn-server (--durability=fsync, a fresh data directory under
$TMPDIR, a free loopback port), then alternates the two clients --repeats
times on the same data shape and prints every run, the medians and the
ratios Python / C++:

  search: --clients concurrent callers, one connection each, each sending
    Search calls of --queries_per_request queries (64) back to back for
    --duration_s, on one collection of --rows x --dim f32 (loaded once by
    peakknn-loadgen). C++: peakknn-loadgen --queries_per_request (the same
    request shape). Also, for reference, loadgen's standard figure: 64
    clients of single-query calls, which the server's batcher merges into
    engine batches of about 64 queries.
  insert: --insert_rows x --dim f32 rows streamed over one InsertStream,
    batches of --batch_rows, --window unacknowledged, timed until the last
    ack (fsynced and visible). C++: peakknn-loadgen --mode=insert
    --streams=1 (its service figure; the in-process engine figure it also
    prints is not used here).

Every client runs on this machine with the server, so each client's own
CPU cost is part of its figure. Run it with the interpreter that has
peakknn installed (python/README.md), from the repository root:

  nice -n 10 .venv/bin/python bench/python_client_bench.py --build build

Needs: ninja -C build peakknn-server peakknn-loadgen.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

import peakknn

SEARCH_COLLECTION = "loadgen"  # peakknn-loadgen's default --collection
INSERT_COLLECTION = "python-insert"


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Server:
    """peakknn-server on a free loopback port, in a temporary directory."""

    def __init__(self, build: pathlib.Path, directory: pathlib.Path):
        port_file = directory / "port"
        self.log = open(directory / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(build / "server/peakknn-server"), "--listen=127.0.0.1:0",
             "--metrics_listen=", f"--port_file={port_file}",
             f"--data_dir={directory / 'data'}", "--durability=fsync"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"peakknn-server did not start; see {self.log.name}")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{port_file.read_text().splitlines()[0]}"

    def stop(self) -> None:
        """SIGTERM; says so when the server had already exited."""
        if self.process.poll() is not None:
            self.log.close()
            log = pathlib.Path(self.log.name).read_text(errors="replace")
            print(f"peakknn-server had exited with status "
                  f"{self.process.returncode}; its log:\n{log[-3000:]}",
                  file=sys.stderr)
            return
        self.process.terminate()
        self.process.wait(timeout=120)
        self.log.close()


def run_loadgen(args, address: str, *flags: str) -> str:
    command = [str(args.build / "bench/peakknn-loadgen"),
               f"--server={address}", f"--dim={args.dim}", *flags]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def number_after(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        sys.exit(f"no match for {pattern!r} in peakknn-loadgen's output:\n{text}")
    return float(match.group(1))


def cpp_search(args, address: str, clients: int, per_request: int,
               load: bool) -> float:
    """peakknn-loadgen's service QPS (queries per second)."""
    out = run_loadgen(
        args, address, f"--rows={args.rows}", f"--k={args.k}",
        f"--recall={args.recall}", f"--clients={clients}",
        f"--queries_per_request={per_request}",
        f"--duration_s={args.duration_s}", f"--skip_load={str(not load).lower()}")
    return number_after(r"service: .* Search: (\d+) QPS", out)


def python_search(args, address: str, queries: np.ndarray):
    """(QPS, client CPU seconds per 1000 queries) of --clients threads,
    each with its own Client (one connection each, as loadgen's clients),
    sending --queries_per_request queries per call."""
    per_request = args.queries_per_request
    counts = [0] * args.clients
    clients = [peakknn.Client(address) for _ in range(args.clients)]
    for c in clients:  # connect and learn the dimension before timing
        c.search(SEARCH_COLLECTION, queries[0], args.k, recall=args.recall)
    starts = np.random.default_rng(3).integers(
        0, len(queries) - per_request, size=(args.clients, 100_000))
    stop = time.perf_counter() + args.duration_s

    def caller(i: int) -> None:
        for start in starts[i]:
            if time.perf_counter() >= stop:
                return
            clients[i].search(SEARCH_COLLECTION,
                              queries[start:start + per_request], args.k,
                              recall=args.recall)
            counts[i] += per_request

    threads = [threading.Thread(target=caller, args=(i,))
               for i in range(args.clients)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for c in clients:
        c.close()
    return sum(counts) / elapsed, 1000 * cpu / sum(counts)


def cpp_insert(args, address: str, directory: pathlib.Path) -> float:
    """peakknn-loadgen's service rows/s for one InsertStream."""
    out = run_loadgen(
        args, address, "--mode=insert", f"--rows={args.insert_rows}",
        f"--batch_rows={args.batch_rows}", f"--window={args.window}",
        "--streams=1", "--repeats=1", f"--engine_dir={directory}")
    return number_after(r"run 1: service (\d+) rows/s", out)


def python_insert(args, address: str, ids: np.ndarray, rows: np.ndarray):
    """(rows/s, client CPU seconds per million rows) of one insert()."""
    with peakknn.Client(address) as client:
        try:
            client.drop(INSERT_COLLECTION)
        except peakknn.NotFound:
            pass
        client.create_collection(INSERT_COLLECTION, dim=args.dim)
        cpu0, t0 = time.process_time(), time.perf_counter()
        client.insert(INSERT_COLLECTION, ids, rows,
                      batch_rows=args.batch_rows, window=args.window)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        client.drop(INSERT_COLLECTION)  # the server's memory, for the next run
    return len(ids) / elapsed, 1e6 * cpu / len(ids)


def summary(name: str, python: list, cpp: list, bar: float) -> str:
    ratio = statistics.median(python) / statistics.median(cpp)
    verdict = "meets" if ratio >= bar else "MISSES"
    return (f"  {name}: Python median {statistics.median(python):.0f}, C++ "
            f"median {statistics.median(cpp):.0f}, ratio {ratio:.3f} "
            f"({verdict} the {bar} bar)")


def search_runs(args, server: Server) -> tuple:
    """Alternates C++ (same request shape), Python, C++ (single-query x 64
    clients); returns the three QPS lists."""
    print(f"search: {args.rows} x {args.dim} f32, k={args.k}, recall "
          f"{args.recall}, {args.clients} callers x "
          f"{args.queries_per_request}-query calls, {args.duration_s} s "
          "each (QPS = queries/s)")
    cpp_like, python_qps, cpp_single = [], [], []
    queries = None
    for r in range(args.repeats):
        cpp_like.append(cpp_search(args, server.address, args.clients,
                                   args.queries_per_request, load=r == 0))
        if queries is None:
            # Perturbed stored rows, as loadgen's queries are.
            rng = np.random.default_rng(2)
            with peakknn.Client(server.address) as c:
                picked = c.get(SEARCH_COLLECTION,
                               rng.integers(0, args.rows, 1000)).vectors
            queries = picked + rng.normal(0, 0.1, picked.shape).astype(np.float32)
        qps, cpu = python_search(args, server.address, queries)
        python_qps.append(qps)
        cpp_single.append(cpp_search(args, server.address, 64, 1, load=False))
        print(f"  run {r + 1}: C++ {args.queries_per_request}-query "
              f"{cpp_like[-1]:.0f} QPS, Python {qps:.0f} QPS (client CPU "
              f"{cpu * 1000:.1f} ms per 1000 queries), C++ 64 clients x "
              f"single-query {cpp_single[-1]:.0f} QPS; load average "
              f"{load_average()}", flush=True)
    return cpp_like, python_qps, cpp_single


def insert_runs(args, server: Server, directory: pathlib.Path) -> tuple:
    """Alternates C++ and Python streaming inserts; returns both rows/s lists."""
    print(f"insert: {args.insert_rows} x {args.dim} f32, one stream, "
          f"batches of {args.batch_rows}, window {args.window}, acked "
          "with fsync")
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((args.insert_rows, args.dim), dtype=np.float32)
    ids = np.arange(args.insert_rows, dtype=np.uint64)
    cpp_rows, python_rows = [], []
    for r in range(args.repeats):
        cpp_rows.append(cpp_insert(args, server.address, directory))
        rate, cpu = python_insert(args, server.address, ids, rows)
        python_rows.append(rate)
        print(f"  run {r + 1}: C++ {cpp_rows[-1]:.0f} rows/s, Python "
              f"{rate:.0f} rows/s (client CPU {cpu:.2f} s per million "
              f"rows); load average {load_average()}", flush=True)
    return cpp_rows, python_rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--build", type=pathlib.Path, default=pathlib.Path("build"))
    parser.add_argument("--only", choices=("search", "insert"),
                        help="run one of the two comparisons")
    parser.add_argument("--rows", type=int, default=100_000, help="search collection rows")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--recall", type=float, default=0.95)
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent search callers of each client")
    parser.add_argument("--queries_per_request", type=int, default=64)
    parser.add_argument("--duration_s", type=float, default=5)
    parser.add_argument("--insert_rows", type=int, default=1_000_000)
    parser.add_argument("--batch_rows", type=int, default=1024)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for binary in ("server/peakknn-server", "bench/peakknn-loadgen"):
        if not os.access(args.build / binary, os.X_OK):
            sys.exit(f"{args.build / binary} not found: ninja -C {args.build} "
                     "peakknn-server peakknn-loadgen")

    directory = pathlib.Path(tempfile.mkdtemp(prefix="peakknn-python-bench-"))
    server = Server(args.build, directory)
    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}; "
              f"server {server.address}, data in {directory}")
        lines = []
        if args.only != "insert":
            cpp_like, python_qps, cpp_single = search_runs(args, server)
            lines += [
                summary(f"search QPS, {args.queries_per_request}-query calls "
                        "vs the same from C++", python_qps, cpp_like, 0.8),
                summary("search QPS vs C++ 64 clients x single-query",
                        python_qps, cpp_single, 0.8)]
        if args.only != "search":
            cpp_rows, python_rows = insert_runs(args, server, directory)
            lines.append(summary("insert rows/s", python_rows, cpp_rows, 0.7))
        print(f"summary (median of {args.repeats}; load average now "
              f"{load_average()}):")
        print("\n".join(lines))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
