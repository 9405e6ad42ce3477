"""Our protocol versus raw pyzmq frames, in the same run.

Small-message round-trip latency (a ping: encode, send, decode, validate,
answer, and back) and the throughput of 1/16/128 MB float32 arrays, one way
through a DEALER -> ROUTER -> DEALER echo on loopback. Prints a table and the
ratio ours/raw.

    .venv/bin/python bench/protocol.py [--repeats N] [--sizes-mb 1 16 128]
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
import zmq

from avatarforge.protocol import decode, encode, make, validate


def echo_peer(ctx: zmq.Context, address: str, ours: bool, stop: threading.Event) -> threading.Thread:
    """A ROUTER that answers each message: ours decodes/re-encodes, raw echoes bytes."""
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(address)

    def loop() -> None:
        while not stop.is_set():
            if not sock.poll(50):
                continue
            peer, *frames = sock.recv_multipart(copy=False)
            if ours:
                msg = validate(decode(frames))
                reply = encode(make("pong", re=msg["id"]) if msg["type"] == "ping" else
                               make("result", re=msg["id"], job_id="echo", artifacts=[msg["params"]]))
                sock.send_multipart([peer.bytes, *reply], copy=False)
            else:
                sock.send_multipart([peer, *frames], copy=False)
        sock.close(0)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def latency_us(sock: zmq.Socket, ours: bool, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if ours:
            msg = make("ping")
            sock.send_multipart(encode(msg))
            reply = validate(decode(sock.recv_multipart(copy=False)))
            assert reply["re"] == msg["id"]
        else:
            sock.send(b"ping")
            sock.recv()
        times.append((time.perf_counter() - t0) * 1e6)
    return times


def throughput_mb_s(sock: zmq.Socket, ours: bool, arr: np.ndarray, repeats: int) -> float:
    """Round trips of `arr`; counts the bytes both ways."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        if ours:
            sock.send_multipart(encode(make("submit", job="echo", params={"data": arr})), copy=False)
            back = validate(decode(sock.recv_multipart(copy=False)))["artifacts"][0]["data"]
        else:
            sock.send_multipart([arr.data], copy=False)
            back = np.frombuffer(sock.recv_multipart(copy=False)[0].buffer, arr.dtype)
        assert back.nbytes == arr.nbytes
        best = min(best, time.perf_counter() - t0)
    return 2 * arr.nbytes / 1e6 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="round trips per array size (best is kept)")
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1, 16, 128])
    args = parser.parse_args()

    ctx = zmq.Context()
    results: dict[str, dict[str, float]] = {}
    for ours in (False, True):
        name = "ours" if ours else "raw"
        stop = threading.Event()
        probe = ctx.socket(zmq.ROUTER)
        port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close(0)
        address = f"tcp://127.0.0.1:{port}"
        peer = echo_peer(ctx, address, ours, stop)
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(address)
        latency_us(sock, ours, 50)  # warm-up: connection, allocator
        lat = sorted(latency_us(sock, ours, args.pings))
        row = {"median_us": statistics.median(lat), "p99_us": lat[int(0.99 * (len(lat) - 1))]}
        for mb in args.sizes_mb:
            arr = np.random.default_rng(0).random(mb * 1024 * 1024 // 4, dtype=np.float32)
            row[f"{mb}MB_MB/s"] = throughput_mb_s(sock, ours, arr, args.repeats)
        results[name] = row
        sock.close(0)
        stop.set()
        peer.join()
    ctx.term()

    print(f"{'measure':<16}{'raw pyzmq':>14}{'ours':>14}{'ours/raw':>10}")
    for key in results["raw"]:
        raw, ours = results["raw"][key], results["ours"][key]
        print(f"{key:<16}{raw:>14.1f}{ours:>14.1f}{ours / raw:>10.2f}")
    print("latency: lower is better; MB/s (both ways, best of repeats): higher is better")


if __name__ == "__main__":
    main()
