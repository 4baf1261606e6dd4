"""Load on `rnnzoo serve`: requests/s and p50/p99 latency of each example's predict endpoint with 1, 8 and 32
concurrent clients on loopback, then a long run (10,000 requests by default) with the server's memory (RSS)
before and after it. A bounded loop: it stops by itself.

    python benchmarks/serve_load.py                       # models of the originals' sizes, trained a moment
    python benchmarks/serve_load.py --runs runs/babi_memnn/20261127-101500-s0 runs/imdb_lstm/...
    python benchmarks/serve_load.py --requests 200 --long 1000 --clients 1 8   # a quicker look

Without --runs it first trains, into a temporary folder, one run per example with the original's layer
sizes on generated data for one epoch (seconds each): latency depends on the sizes, not on what the weights
learned. The server runs as `python -m rnnzoo serve` in a subprocess (one torch thread per inference, one
inference per core); the clients are asyncio tasks in this process, one keep-alive connection each, on the
same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The originals' layer sizes (and input lengths) on generated data, one epoch: a run to time, not to use.
BENCH_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "babi_memnn": ("tiny", {"generated_stories": 300, "embedding_dim": 64, "lstm_size": 32, "epochs": 1}),
    "babi_rnn": ("tiny", {"generated_stories": 300, "embedding_dim": 50, "sentence_hidden": 50, "epochs": 1}),
    "imdb_lstm": ("tiny", {"generated_reviews": 300, "num_words": 20_000, "maxlen": 80, "embedding_dim": 128,
                           "lstm_size": 128, "epochs": 1}),
    "imdb_cnn_lstm": ("tiny", {"generated_reviews": 300, "num_words": 20_000, "maxlen": 100, "embedding_dim": 128,
                               "filters": 64, "kernel_size": 5, "pool_size": 4, "lstm_size": 70, "epochs": 1}),
    "imdb_bidirectional_lstm": ("tiny", {"generated_reviews": 300, "num_words": 20_000, "maxlen": 100,
                                         "embedding_dim": 128, "lstm_size": 64, "epochs": 1}),
    "mnist_hierarchical_rnn": ("tiny", {"generated_images": 200, "row_hidden": 128, "column_hidden": 128,
                                        "epochs": 1}),
    # the small preset's sizes: the original's 4 x 40 filters take seconds a rollout on a CPU
    "conv_lstm": ("tiny", {"movies": 24, "train_movies": 20, "test_start": 20, "frames": 15, "size": 40,
                           "filters": 16, "layers": 2, "time_padding": "causal", "epochs": 1}),
}
STORY = ("Mary moved to the bathroom. John went to the hallway. Sandra journeyed to the garden. Daniel travelled "
         "to the office. Mary went back to the kitchen. John moved to the bedroom. Where is Mary?")
REVIEW = ("This movie was a wonderful surprise: the acting is superb, the story moving and the music beautiful. "
          "I really loved the ending, although the plot was a bit dull in the middle and one scene felt like a "
          "waste of time. The director knows what the characters need, and the cast delivers. Worth a watch.")


def request_bodies() -> dict[str, dict[str, Any]]:
    """One typical request of each family: a story, a review, a drawn digit (a canvas PNG), a test movie."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(canvas).line((90, 60, 190, 60, 120, 230), fill="black", width=20)
    png = io.BytesIO()
    canvas.save(png, "PNG")
    story, question = STORY.rsplit(". ", 1)
    return {"bAbI": {"story": story + ".", "question": question}, "IMDB": {"text": REVIEW},
            "MNIST": {"image": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()},
            "moving squares": {"frames": 7, "ahead": 8}}


def train_runs(folder: Path, examples: list[str]) -> list[Path]:
    import rnnzoo

    paths = []
    for name in examples:
        preset, settings = BENCH_SETTINGS[name]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            run = rnnzoo.train(name, preset=preset, run_dir=folder / name / "bench", progress=False, test=False,
                               **settings)
        print(f"trained {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        paths.append(run.path)
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON: a few lines of asyncio streams, so that the
    clients cost the shared cores little (httpx's own work per request would count as server latency)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:"))
        return int(head[0].split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(base: str, targets: list[tuple[str, dict[str, Any]]], clients: int, requests: int
               ) -> dict[str, Any]:
    """`requests` POSTs from `clients` concurrent clients (one connection each), each to the next of the
    (path, body) `targets` in turn: rate, latency, errors."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    latencies: list[float] = []
    errors: list[str] = []
    left = requests
    payloads = [(path, json.dumps(body).encode()) for path, body in targets]

    async def client() -> None:
        nonlocal left
        connection = Connection(host, int(port))
        try:
            while left > 0:
                left -= 1
                path, payload = payloads[left % len(payloads)]
                started = time.perf_counter()
                status, answer = await connection.post(path, payload)
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(f"{status} {answer[:200]!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    return {"clients": clients, "requests": len(ms), "seconds": round(seconds, 2),
            "requests_per_s": round(len(ms) / seconds, 1), "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2), "errors": len(errors),
            "first_error": errors[0] if errors else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", help="run folders to serve (default: train timing runs, see above)")
    ap.add_argument("--examples", nargs="+", default=list(BENCH_SETTINGS), help="examples to time")
    ap.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32], help="concurrent clients (1 8 32)")
    ap.add_argument("--requests", type=int, default=1000, help="requests per example and client count (1000)")
    ap.add_argument("--slow-requests", type=int, default=40,
                    help="requests per client count for conv_lstm, seconds a rollout (40)")
    ap.add_argument("--long", type=int, default=10_000, help="requests of the memory run, bAbI and IMDB (10000)")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="rnnzoo-serve-load-") as tmp:
        runs = [Path(r) for r in args.runs] if args.runs else train_runs(Path(tmp), args.examples)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        log = Path(tmp) / "server.log"  # a file, not a pipe: a full pipe would stall the server
        with log.open("w") as err:
            server = subprocess.Popen([sys.executable, "-m", "rnnzoo", "serve", *map(str, runs), "--port",
                                       str(port)], env=env, stderr=err)
            try:
                results = asyncio.run(measure(f"http://127.0.0.1:{port}", server, log, args))
            finally:
                server.terminate()
                server.wait(30)
    print(json.dumps(results["long"]), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


async def measure(base: str, server: subprocess.Popen, log: Path, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            served = httpx.get(f"{base}/api/runs", timeout=2).json()["runs"]
            break
        except httpx.HTTPError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()}") from None
            await asyncio.sleep(0.2)
    bodies = request_bodies()
    cores = len(os.sched_getaffinity(0))
    print(f"rnnzoo serve on {cores} CPU cores, {os.cpu_count()} in the machine; clients in this process", flush=True)
    print(f"{'endpoint':<42} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    rows = []
    targets = [(s["example"], "predict", bodies[s["group"]]) for s in served if s["example"] in args.examples]
    targets += [(s["example"], "contributions", bodies["IMDB"]) for s in served if s["group"] == "IMDB"][:1]
    for example, endpoint, body in targets:
        slow = example == "conv_lstm"
        url = f"/api/{example}/{endpoint}"
        await load(base, [(url, body)], 2, 4 if slow else 20)  # warm-up
        for clients in args.clients:
            n = args.slow_requests if slow else args.requests // 5 if endpoint == "contributions" else args.requests
            row = {"endpoint": url, **await load(base, [(url, body)], clients, max(n, clients))}
            rows.append(row)
            print(f"{row['endpoint']:<42} {clients:>7} {row['requests']:>8} {row['requests_per_s']:>8} "
                  f"{row['p50_ms']:>8} {row['p99_ms']:>8} {row['errors']:>6}", flush=True)
            if row["first_error"]:
                print(f"  first error: {row['first_error']}")
    long_targets = [(f"/api/{s['example']}/predict", bodies[s["group"]]) for s in served
                    if s["group"] in ("bAbI", "IMDB") and s["example"] in args.examples]
    before = rss_mb(server.pid)
    run = await load(base, long_targets, 8, args.long)
    long = {**run, "endpoints": [url for url, _ in long_targets],
            "rss_before_mb": round(before, 1), "rss_after_mb": round(rss_mb(server.pid), 1)}
    print(f"long run, 8 clients in turn over {', '.join(long['endpoints'])}: {long['requests']} requests in "
          f"{long['seconds']} s, p50 {long['p50_ms']} ms, p99 {long['p99_ms']} ms, {long['errors']} errors; "
          f"server RSS {long['rss_before_mb']} MB before, {long['rss_after_mb']} MB after")
    return {"cores": cores, "rows": rows, "long": long}


if __name__ == "__main__":
    main()
