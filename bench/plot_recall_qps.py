#!/usr/bin/python3
"""Recall against QPS for every system of a `peakknn-bench --sweep recall` run.

One command runs the benchmark and writes both files:

    /usr/bin/python3 bench/plot_recall_qps.py --bench build/bench/peakknn-bench \
        --out /tmp/recall_qps -- --n 100000 --queries 1024 --k 10

runs `peakknn-bench --sweep recall --json /tmp/recall_qps.json <args after
--> and plots /tmp/recall_qps.png. With --json instead of --bench it only
plots an existing report. The plot: measured recall@k on x, QPS on a log
scale on y, one line per system and dtype (peakknn f32/bf16 at each recall
target, FAISS flat, HNSW per efSearch, IVF per nprobe); index build times
are in the legend, the run's N, dim, queries and k in the title.

Needs Debian's python3-matplotlib (scripts/install-deps.sh); run it with
/usr/bin/python3.
"""

import argparse
import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def point_label(row):
    """A short label for one point: the setting that produced it."""
    setting = row.get("setting") or ""
    if row["system"] == "peakknn":
        return "exact" if row["recall_target"] == 1 else f"t{row['recall_target']:g}"
    if "efSearch=" in setting:
        return "ef" + setting.split("efSearch=")[1]
    if "nprobe=" in setting:
        return "np" + setting.split("nprobe=")[1]
    return ""


def line_name(row, build_seconds):
    name = f"{row['system']} {row['dtype']}"
    if row["system"] == "faiss-hnsw":
        name += " (" + row["setting"].split(",efSearch")[0] + ")"
    elif row["system"] == "faiss-ivf":
        name += " (" + row["setting"].split(",nprobe")[0] + ")"
    if build_seconds is not None and row["system"] in ("faiss-hnsw", "faiss-ivf"):
        name += f", build {build_seconds:.1f} s"
    return name


def plot(report, png_path):
    rows = report["results"]
    if not rows:
        sys.exit("plot_recall_qps.py: the report has no results")
    lines = {}  # (system, dtype) -> rows, in the report's order
    for row in rows:
        if row["qps"] is None or row["recall"] is None:
            continue
        lines.setdefault((row["system"], row["dtype"]), []).append(row)
    first = rows[0]
    fig, ax = plt.subplots(figsize=(9, 6))
    for (system, dtype), points in lines.items():
        points.sort(key=lambda r: r["recall"])
        xs = [r["recall"] for r in points]
        ys = [r["qps"] for r in points]
        style = "o-" if system == "peakknn" else ("s--" if system != "faiss-flat" else "D")
        ax.plot(xs, ys, style, label=line_name(points[0], points[0].get("build_seconds")))
        for r in points:
            ax.annotate(point_label(r), (r["recall"], r["qps"]),
                        textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel(f"measured recall@{first['k']}")
    ax.set_ylabel("queries per second (log)")
    ax.set_title(f"recall vs QPS: N={first['n']}, dim={first['dim']}, "
                 f"{first['metric']}, batch {first['queries']}, k={first['k']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    print(f"plot: {png_path} (N={first['n']}, {len(rows)} points)")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bench", help="peakknn-bench binary to run with --sweep recall")
    source.add_argument("--json", help="plot an existing --sweep recall report")
    parser.add_argument("--out", help="with --bench: writes OUT.json and OUT.png")
    parser.add_argument("--png", help="with --json: the PNG to write")
    parser.add_argument("bench_args", nargs="*",
                        help="after --: more peakknn-bench flags (--n, --k, ...)")
    args = parser.parse_args()
    if args.bench:
        if not args.out:
            parser.error("--bench needs --out (the path without .json/.png)")
        json_path, png_path = args.out + ".json", args.out + ".png"
        command = [args.bench, "--sweep", "recall", "--json", json_path] + args.bench_args
        print("running:", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            sys.exit(f"plot_recall_qps.py: {args.bench} failed")
    else:
        if args.bench_args:
            parser.error("peakknn-bench flags only go with --bench")
        json_path = args.json
        png_path = args.png or json_path.rsplit(".", 1)[0] + ".png"
    with open(json_path) as f:
        plot(json.load(f), png_path)


if __name__ == "__main__":
    main()
