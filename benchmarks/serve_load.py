"""Load test of ``seqrec serve`` on loopback: throughput and latency percentiles per concurrency.

Starts ``seqrec serve MODEL_DIR`` on a free loopback port (or uses ``--url``), then, with an async
client (aiohttp), for each server setting (micro-batching off, and on):

- closed loop: ``--requests`` requests at each concurrency of ``--concurrency`` (each of C
  clients sends its next request when its answer arrives): throughput, p50/p95/p99, non-2xx;
- open loop at ``--rate`` requests/s (requests start on a fixed schedule, whatever the answers):
  the latency a steady arrival rate sees;
- a mixed run at concurrency 64 with ``--malformed`` of the requests malformed (bad JSON, wrong
  types, out-of-range k, unknown fields, oversize bodies): every malformed one must get a 4xx and
  no request a 5xx.

Each request is top-10 after a ``--history``-item history drawn from the model's vocabulary.
``--beauty PATH/beauty.txt`` builds the model to serve: a BERT4Rec with
``configs/bert4rec-beauty.yaml``'s model settings over Beauty's item vocabulary (54,542 items),
**untrained** (the figures are about serving speed, which depends on shapes only). The client
runs on the same machine as the server and takes CPU from it. Results (with the load average
before and after) go to ``benchmarks/results/serve_load.{json,md}``.

    python benchmarks/serve_load.py --beauty /work/shared/data/beauty/beauty.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = {  # name -> extra `seqrec serve` arguments
    "no batching": ["--max-batch", "1"],
    "micro-batching (up to 32, no wait)": ["--max-batch", "32", "--max-wait-ms", "0"],
    "micro-batching (up to 32, 2 ms wait)": ["--max-batch", "32", "--max-wait-ms", "2"],
    "ONNX, no batching": ["--backend", "onnx", "--max-batch", "1"],
    "ONNX, micro-batching (up to 32, no wait)": [
        "--backend", "onnx", "--max-batch", "32", "--max-wait-ms", "0",
    ],
}  # fmt: skip
MALFORMED = [  # (body bytes, what is wrong); every one must get a 4xx
    (b"{", "truncated JSON"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b'{"history": "1 2 3"}', "history not a list"),
    (b'{"history": [true, null]}', "ids of the wrong type"),
    (b'{"history": []}', "empty history"),
    (b'{"history": ["1"], "k": 0}', "k below 1"),
    (b'{"history": ["1"], "k": 1e400}', "k not an integer (inf)"),
    (b'{"history": ["1"], "k": 5000}', "k above 1000"),
    (b'{"history": ["1"], "K": 5}', "unknown field"),
    (b"[" * 50_000 + b"]" * 50_000, "nested 50,000 deep"),
    (b'{"history": ["1"], "pad": "' + b"x" * (2 << 20) + b'"}', "body over the limit"),
]


def build_beauty_model(beauty_txt: Path, out_dir: Path, onnx: bool) -> Path:
    """An untrained BERT4Rec of the Beauty preset's shapes over Beauty's item vocabulary (with
    its ONNX graph when an ONNX setting is measured)."""
    import torch
    import yaml

    from seqrec.models import build_model
    from seqrec.serving.export import write_model_folder

    items = list(dict.fromkeys(line.split()[1] for line in beauty_txt.read_text().splitlines()))
    preset = yaml.safe_load((ROOT / "configs" / "bert4rec-beauty.yaml").read_text())["model"]
    name = preset.pop("name")
    torch.manual_seed(0)
    model = build_model(name, n_items=len(items), **preset)
    note = {"note": "untrained: for serving-speed measurements only"}
    return write_model_folder(
        out_dir, model, name, items, dataset="beauty", test_metrics=note, onnx=onnx
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, extra: list[str], threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", "seqrec.cli", "serve", str(model_dir), "--port", str(port)]
    command += ["--threads", str(threads), *extra]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}"


async def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy in {timeout} s")


def summary(latencies: list[float], statuses: list[int], seconds: float) -> dict:
    ms = np.array(latencies) * 1000.0
    return {
        "requests": len(statuses),
        "seconds": round(seconds, 3),
        "throughput_rps": round(len(statuses) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "non_2xx": int(sum(not 200 <= s < 300 for s in statuses)),
        "5xx": int(sum(s >= 500 for s in statuses)),
    }


async def _send(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    headers = {"content-type": "application/json"}
    async with session.post(f"{url}/recommend", data=body, headers=headers) as response:
        await response.read()
        return time.perf_counter() - start, response.status


async def closed_loop(url: str, bodies: list[bytes], concurrency: int) -> tuple[dict, list[int]]:
    """``concurrency`` clients, each sending its next body when its answer has arrived."""
    statuses, latencies = [0] * len(bodies), [0.0] * len(bodies)
    next_index = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for i in next_index:
                latencies[i], statuses[i] = await _send(session, url, bodies[i])

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return summary(latencies, statuses, seconds), statuses


async def open_loop(url: str, bodies: list[bytes], rate: float) -> dict:
    """Request ``i`` starts at ``i / rate`` seconds, whether or not earlier ones have finished."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()

        async def scheduled(i: int) -> tuple[float, int]:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            return await _send(session, url, bodies[i])

        done = await asyncio.gather(*(scheduled(i) for i in range(len(bodies))))
        seconds = time.perf_counter() - start
    return summary([d[0] for d in done], [d[1] for d in done], seconds)


def valid_bodies(items: list[str], n: int, history: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"history": rng.sample(items, history), "k": 10}).encode() for _ in range(n)]


async def measure(url: str, items: list[str], args: argparse.Namespace) -> dict:
    """Closed loop per concurrency and the open loop at ``args.rate`` against one server."""
    warm = valid_bodies(items, 200, args.history, seed=0)
    await closed_loop(url, warm, 4)
    out = {"closed": {}, "open": None}
    for concurrency in args.concurrency:
        bodies = valid_bodies(items, args.requests, args.history, seed=concurrency)
        out["closed"][str(concurrency)] = (await closed_loop(url, bodies, concurrency))[0]
        print(f"  concurrency {concurrency}: {out['closed'][str(concurrency)]}", flush=True)
    n_open = int(args.rate * args.open_seconds)
    out["open"] = await open_loop(url, valid_bodies(items, n_open, args.history, 1), args.rate)
    out["open"]["rate_rps"] = args.rate
    print(f"  open loop {args.rate}/s: {out['open']}", flush=True)
    return out


async def malformed_run(url: str, items: list[str], args: argparse.Namespace) -> dict:
    """Concurrency 64, a share of malformed bodies: 5xx count and 4xx for every malformed one."""
    n = args.mixed_requests
    bodies = valid_bodies(items, n, args.history, seed=7)
    rng = random.Random(8)
    bad = set(rng.sample(range(n), round(n * args.malformed)))
    for i in bad:
        bodies[i] = MALFORMED[i % len(MALFORMED)][0]
    result, statuses = await closed_loop(url, bodies, 64)
    result["malformed"] = len(bad)
    result["malformed_4xx"] = sum(400 <= statuses[i] < 500 for i in bad)
    result["valid_2xx"] = sum(200 <= statuses[i] < 300 for i in range(n) if i not in bad)
    print(f"  malformed mix: {result}", flush=True)
    return result


def write_results(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# seqrec serve under load", "",
        f"Model: {results['model']}. History {results['history']} items, top-10. "
        f"Load average before {results['load_before']}, after {results['load_after']}.", "",
        "| server | concurrency | throughput (req/s) | p50 ms | p95 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, runs in results["settings"].items():
        for c, r in runs["closed"].items():
            lines.append(
                f"| {name} | {c} | {r['throughput_rps']} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['p99_ms']} | {r['non_2xx']} |"
            )
        r = runs["open"]
        lines.append(
            f"| {name} | open loop {r['rate_rps']}/s | {r['throughput_rps']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['non_2xx']} |"
        )
    if results.get("malformed"):
        m = results["malformed"]
        lines += [
            "", f"Malformed mix ({m['requests']} requests at concurrency 64, {m['malformed']} "
            f"malformed): {m['5xx']} 5xx, {m['malformed_4xx']} of {m['malformed']} malformed got "
            f"a 4xx, {m['valid_2xx']} valid got a 2xx; p99 {m['p99_ms']} ms.",
        ]  # fmt: skip
    (RESULTS / "serve_load.md").write_text("\n".join(lines) + "\n")


async def run_setting(model_dir: Path | None, url: str | None, extra: list[str], args) -> dict:
    server = None
    if url is None:
        server, url = start_server(model_dir, extra, args.threads)
    try:
        await wait_healthy(url)
        async with aiohttp.ClientSession() as session, session.get(f"{url}/model") as response:
            info = await response.json()
        items = valid_items(model_dir, info)
        out = await measure(url, items, args)
        if args.mixed_requests:
            out["malformed"] = await malformed_run(url, items, args)
        return out
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def valid_items(model_dir: Path | None, info: dict) -> list[str]:
    if model_dir is not None:
        return json.loads((model_dir / "items.json").read_text())
    return [str(i) for i in range(1, info["n_items"] + 1)]  # --url: assume ids 1..n


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model-dir", type=Path, help="an exported model folder")
    where.add_argument("--beauty", type=Path, help="beauty.txt: build the untrained Beauty model")
    where.add_argument("--url", help="a running server (its item ids are assumed to be 1..n)")
    parser.add_argument("--requests", type=int, default=1000, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests/s")
    parser.add_argument("--open-seconds", type=float, default=10.0)
    parser.add_argument("--mixed-requests", type=int, default=10_000, help="0 skips the mix")
    parser.add_argument("--malformed", type=float, default=0.1)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir
        if args.beauty is not None:
            onnx = any(name.startswith("ONNX") for name in args.settings)
            model_dir = build_beauty_model(args.beauty, Path(tmp) / "beauty-bert4rec", onnx)
        described = "BERT4Rec, hidden 64, Beauty's 54,542 items (untrained)"
        model = described if args.beauty is not None else str(model_dir or args.url)
        results = {"model": model, "history": args.history, "threads": args.threads}
        results["settings"] = {}
        mixed = args.mixed_requests
        for name in args.settings:
            print(name, flush=True)
            args.mixed_requests = mixed if name == args.settings[0] else 0
            run = asyncio.run(run_setting(model_dir, args.url, SETTINGS[name], args))
            if "malformed" in run:
                results["malformed"] = run.pop("malformed")
            results["settings"][name] = run
    results["load_before"] = [round(x, 2) for x in load_before]
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    write_results(results)
    print((RESULTS / "serve_load.md").read_text())


if __name__ == "__main__":
    main()
