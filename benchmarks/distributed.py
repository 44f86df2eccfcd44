"""Single-process fit against the same fit split over two workers (and two devices).

    python benchmarks/distributed.py [--rows 1000000] [--features 50] [--repeats 3]

Each run generates the same rows (seeded by block), then times, side by side:

- the plain fit of all rows in one process;
- MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1, each holding
  half the rows (generated there, as a cluster's workers hold their own data),
  each calling ``fit`` on its half inside ``strategy.scope()``;
- MirroredStrategy: one process, the rows split over two logical CPU devices.

It prints a Markdown table: the median fit time of each, its ratio to the plain
fit, the epochs, and the largest coefficient difference from the plain fit.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import textwrap

COMMON = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np

ROWS, FEATURES, REPEATS = {rows}, {features}, {repeats}
BLOCK = 100_000
COEF = np.linspace(-1.0, 1.0, FEATURES)

def rows(start, stop):
    # Rows [start, stop) of the data set, the same in every process (one seed per block).
    parts = []
    for block in range(start // BLOCK, (stop + BLOCK - 1) // BLOCK):
        rng = np.random.default_rng(block)
        X = rng.standard_normal((BLOCK, FEATURES)) * np.logspace(-1, 1, FEATURES)
        y = X @ COEF + 0.5 + 0.1 * rng.standard_normal(BLOCK)
        lo, hi = max(start - block * BLOCK, 0), min(stop - block * BLOCK, BLOCK)
        parts.append((X[lo:hi], y[lo:hi]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

def timed(fit):
    times, est = [], None
    for _ in range(REPEATS + 1):  # the first fit traces the kernels: not timed
        start = time.perf_counter()
        est = fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:])), est
"""

PLAIN = """
from skl_tfreg import SGDL2Regressor
X, y = rows(0, ROWS)
seconds, est = timed(lambda: SGDL2Regressor(alpha=1e-4).fit(X, y))
print(json.dumps({{"seconds": seconds, "epochs": est.n_iter_, "coef": est.coef_.tolist(),
                  "intercept": float(est.intercept_)}}))
"""

WORKER = """
index, ports = {index}, {ports}
os.environ["TF_CONFIG"] = json.dumps({{
    "cluster": {{"worker": [f"127.0.0.1:{{p}}" for p in ports]}},
    "task": {{"type": "worker", "index": index}},
}})
import tensorflow as tf
from skl_tfreg import SGDL2Regressor
options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=120)
strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
half = ROWS // 2
X, y = rows(0, half) if index == 0 else rows(half, ROWS)

def fit():
    with strategy.scope():
        return SGDL2Regressor(alpha=1e-4).fit(X, y)

seconds, est = timed(fit)
print(json.dumps({{"seconds": seconds, "epochs": est.n_iter_, "coef": est.coef_.tolist(),
                  "intercept": float(est.intercept_)}}))
"""

MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from skl_tfreg import SGDL2Regressor
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
X, y = rows(0, ROWS)

def fit():
    with strategy.scope():
        return SGDL2Regressor(alpha=1e-4).fit(X, y)

seconds, est = timed(fit)
print(json.dumps({{"seconds": seconds, "epochs": est.n_iter_, "coef": est.coef_.tolist(),
                  "intercept": float(est.intercept_)}}))
"""


def _run(scripts, timeout=1800):
    procs = [
        subprocess.Popen([sys.executable, "-c", s], stdout=subprocess.PIPE, text=True)
        for s in scripts
    ]
    try:
        return [json.loads(p.communicate(timeout=timeout)[0].strip().splitlines()[-1])
                for p in procs]  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _free_ports(k):
    sockets = [socket.socket() for _ in range(k)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    common = COMMON.format(rows=args.rows, features=args.features, repeats=args.repeats)

    def script(body, **fields):
        return textwrap.dedent(common) + textwrap.dedent(body).format(**fields)

    (plain,) = _run([script(PLAIN)])
    ports = _free_ports(2)
    workers = _run([script(WORKER, index=i, ports=ports) for i in range(2)])
    (mirrored,) = _run([script(MIRRORED)])

    def diff(result):
        import numpy as np

        coef = np.abs(np.array(result["coef"]) - np.array(plain["coef"])).max()
        return max(coef, abs(result["intercept"] - plain["intercept"]))

    rows = [
        ("plain fit, one process, all rows", plain),
        ("MultiWorkerMirroredStrategy, 2 workers x half the rows (worker 0)", workers[0]),
        ("MultiWorkerMirroredStrategy, 2 workers x half the rows (worker 1)", workers[1]),
        ("MirroredStrategy, 2 logical CPU devices, one process", mirrored),
    ]
    print(f"{args.rows:,} x {args.features} float64, alpha=1e-4, median of {args.repeats} fits")
    print()
    print("| fit | seconds | vs plain | epochs | max coefficient difference from plain |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        ratio = r["seconds"] / plain["seconds"]
        print(f"| {name} | {r['seconds']:.3f} | {ratio:.2f}x | {r['epochs']} | {diff(r):.1e} |")


if __name__ == "__main__":
    main()
