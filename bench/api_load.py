"""The server under load: 50 SSE clients on one session plus 200 requests/s of reads, 30 s.

    .venv/bin/python bench/api_load.py [--seconds 30] [--clients 50] [--rate 200] [--events 20]

One `branchwork serve` (a subprocess, default settings, rate limits on) on loopback, one
project with one session. During the run:
- another process appends `--events` notes a second to the session (as a CLI `run` would),
  each stamped with the time it was written;
- `--clients` SSE clients follow the session's stream from seq 0;
- reads are sent open-loop at `--rate` per second (the session, a page of its events, the
  project's session list, the checkpoints), spread over 8 tokens (50 requests/s each at most).
Reported: the reads' p50/p99 latency and how many failed; the time from an event's write to
its arrival at a client (p50/p99 over all clients); and, the proof, whether every client got
every event exactly once and in order (seqs 1..N). The machine's load is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _repos import git_repo

BIN = Path(sys.executable).parent
WRITER = """
import sys, time
from branchwork.domain.events import Note
from branchwork.store import Store
store = Store.open(sys.argv[1])
per_s, until = float(sys.argv[3]), time.time() + float(sys.argv[4])
while time.time() < until:
    store.append(sys.argv[2], [(Note(text=f"t={time.time():.6f}"), "system")])
    time.sleep(1 / per_s)
store.close()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "branchwork"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def _setup(root: Path) -> tuple[dict[str, str], str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHWORK_")}
    env["BRANCHWORK_HOME"] = str(root / "home")
    repo = git_repo(root / "load", {"README.md": "# load\n", "app.py": "print('hi')\n"})
    _cli(env, "project", "add", str(repo))
    made = json.loads(_cli(env, "session", "new", "--project", "load", "--json"))
    tokens = [
        _cli(env, "user", "add", f"reader{i}", "--role", "viewer").strip().splitlines()[-1]
        for i in range(8)
    ]
    return env, made["id"], tokens


async def _follow(url: str, token: str, session: str, got: list[tuple[int, float]]) -> None:
    """Append (seq, delay from write to arrival) of every event the client gets, until
    cancelled."""
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/sessions/{session}/events/stream"
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=None) as client,
        client.stream("GET", path) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                text = event["payload"].get("text", "")
                delay = time.time() - float(text[2:]) if text.startswith("t=") else -1.0
                got.append((int(event["seq"]), delay))


def _reads(
    url: str, tokens: list[str], session: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """Reads at `rate` a second, open-loop, from one thread per token (run in a process of
    its own: the SSE clients' parsing does not slow them). A latency counts from when the
    request was due, so a reader that falls behind shows it."""
    paths = [
        f"/api/sessions/{session}",
        f"/api/sessions/{session}/events?after=0&limit=50",
        "/api/projects/load/sessions",
        f"/api/sessions/{session}/checkpoints",
    ]
    latencies: list[float] = []
    failures = [0]
    begin = time.perf_counter() + 0.2
    per_thread = rate / len(tokens)

    def reader(k: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[k]}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for i in range(int(per_thread * seconds)):
                due = begin + (i + k / len(tokens)) / per_thread
                time.sleep(max(0.0, due - time.perf_counter()))
                try:
                    ok = client.get(paths[(i + k) % len(paths)]).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - due)
                failures[0] += not ok

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _run(
    args: argparse.Namespace, url: str, env: dict[str, str], session: str, tokens: list[str]
) -> None:
    results: list[list[tuple[int, float]]] = [[] for _ in range(args.clients)]
    followers = [
        asyncio.create_task(_follow(url, random.choice(tokens), session, got)) for got in results
    ]
    await asyncio.sleep(1)  # every client connected and caught up
    db = f"sqlite:///{Path(env['BRANCHWORK_HOME']) / 'branchwork.db'}"
    writer = subprocess.Popen(  # noqa: ASYNC220 (started once, waited for below)
        [sys.executable, "-c", WRITER, db, session, str(args.events), str(args.seconds)], env=env
    )
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        latencies, failures = await loop.run_in_executor(
            pool, _reads, url, tokens, session, args.rate, args.seconds
        )
    writer.wait()
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {tokens[0]}"}
    ) as c:
        final = (await c.get(f"/api/sessions/{session}")).json()["state"]["last_seq"]
    await asyncio.sleep(2)  # the last events reach the clients
    for task in followers:
        task.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    _report(args, latencies, failures, results, int(final))


def _report(
    args: argparse.Namespace,
    latencies: list[float],
    failures: int,
    results: list[list[tuple[int, float]]],
    final: int,
) -> None:
    complete = sum([seq for seq, _ in got] == list(range(1, final + 1)) for got in results)
    delays = [d for got in results for _, d in got if d >= 0]
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(
        f"reads: {len(latencies)} in {args.seconds:.0f} s ({len(latencies) / args.seconds:.0f}/s),"
        f" failed {failures}; latency p50 {_pct(latencies, 0.5) * 1000:.1f} ms,"
        f" p99 {_pct(latencies, 0.99) * 1000:.1f} ms"
    )
    print(
        f"events: {final} in the log; SSE delivery (write -> client) p50"
        f" {_pct(delays, 0.5) * 1000:.1f} ms, p99 {_pct(delays, 0.99) * 1000:.1f} ms"
        f" over {len(delays)} deliveries"
    )
    print(f"clients with every event exactly once, in order: {complete} of {len(results)}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--events", type=float, default=20, help="events a second, written")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bw-load-"))
    env, session, tokens = _setup(root)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "branchwork"), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        cpu_before, wall = _cpu_seconds(server.pid), time.monotonic()
        asyncio.run(_run(args, url, env, session, tokens))
        cpu = _cpu_seconds(server.pid) - cpu_before
        print(f"server process: {cpu:.1f} s of CPU over {time.monotonic() - wall:.1f} s of run")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
