"""Our protocol versus raw pyzmq frames, measured in the same run.

Two echo peers (ZeroMQ ROUTER on tcp://127.0.0.1, free ports) answer a DEALER:
- raw: sends the frames it received straight back (the client sends raw
  frames shaped like ours: same header length, same data frame);
- ours: decodes and validates each request and answers with an encoded reply
  (ping -> pong; submit{params.data} -> result{artifacts[0].data}), as the
  backend does.

Measured, alternating raw and ours so drift hits both alike:
- round-trip latency of a small message (median, p99 over --pings);
  raw sends bytes as long as our encoded ping, so only encode/decode/validate differ;
- throughput of float32 arrays (--sizes, MB) through a full round trip, sent
  with copy=False; MB/s counts the payload both ways (2 x size / time),
  median of --repeats timed trips after one untimed warm-up (more trips below
  16 MB, in proportion, at most 1000; at most --max-repeats-128 from 128 MB).

    .venv/bin/python bench/protocol.py [--pings 2000] [--repeats 50] [--sizes 1 16 128] [--peer process|thread]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import threading
import time
from typing import Any, Callable

import numpy as np
import zmq

from avatarforge.protocol import decode, encode, make, validate

STOP = b"stop"


# -- the echo peer -----------------------------------------------------------------------

def serve(ours: bool, report_port: Callable[[int], None]) -> None:
    """Run an echo ROUTER until a one-frame STOP arrives."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    # Bound here, on a port the OS picks: no probe-then-rebind race.
    report_port(sock.bind_to_random_port("tcp://127.0.0.1"))
    while True:
        peer, *frames = sock.recv_multipart(copy=False)
        if len(frames) == 1 and frames[0].bytes == STOP:
            break
        if not ours:
            sock.send_multipart([peer, *frames], copy=False)
            continue
        msg = validate(decode(frames), requests_only=True)
        if msg["type"] == "ping":
            reply = make("pong", re=msg["id"])
        else:   # the array goes back as a view of the frame it came in: no copy either way
            reply = make("result", re=msg["id"], job_id="echo", artifacts=[{"kind": "echo", **msg["params"]}])
        sock.send_multipart([peer, *encode(reply)], copy=False)
    sock.close(0)
    ctx.term()


def _serve_in_process(ours: bool, conn: Any) -> None:
    serve(ours, conn.send)


class Peer:
    """An echo peer in a child process (default: no GIL shared with the client, as
    with the real backend) or in a thread."""

    def __init__(self, ours: bool, mode: str) -> None:
        if mode == "process":
            parent, child = mp.get_context("spawn").Pipe()
            self.worker: Any = mp.get_context("spawn").Process(target=_serve_in_process, args=(ours, child),
                                                               daemon=True)
            self.worker.start()
            deadline = time.monotonic() + 60
            while not parent.poll(0.1):
                if not self.worker.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("echo peer did not start")
            port = parent.recv()
        else:
            ready = threading.Event()
            box: list[int] = []
            self.worker = threading.Thread(target=serve, args=(ours, lambda p: (box.append(p), ready.set())),
                                           daemon=True)
            self.worker.start()
            ready.wait(10)
            port = box[0]
        self.address = f"tcp://127.0.0.1:{port}"

    def stop(self, ctx: zmq.Context) -> None:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.connect(self.address)
        sock.send(STOP)
        sock.close()
        self.worker.join(10)


# -- one round trip of each kind ---------------------------------------------------------

def ping_ours(sock: zmq.Socket) -> None:
    msg = make("ping")
    sock.send_multipart(encode(msg))
    reply = validate(decode(sock.recv_multipart(copy=False)))
    assert reply["type"] == "pong" and reply["re"] == msg["id"]


def ping_raw(payload: bytes) -> Callable[[zmq.Socket], None]:
    def ping(sock: zmq.Socket) -> None:
        sock.send(payload)
        sock.recv()
    return ping


def array_ours(sock: zmq.Socket, arr: np.ndarray) -> np.ndarray:
    sock.send_multipart(encode(make("submit", job="echo", params={"data": arr})), copy=False)
    return validate(decode(sock.recv_multipart(copy=False)))["artifacts"][0]["data"]


def array_raw(header: bytes) -> Callable[[zmq.Socket, np.ndarray], np.ndarray]:
    # The same frames as ours, [small header, data]: libzmq moves a large lone
    # frame measurably slower than one behind a small frame (30-50% at 128 MB
    # here), which would otherwise be counted against or for the protocol.
    def trip(sock: zmq.Socket, arr: np.ndarray) -> np.ndarray:
        sock.send_multipart([header, arr.data], copy=False)
        return np.frombuffer(sock.recv_multipart(copy=False)[1].buffer, arr.dtype)
    return trip


# -- measuring ---------------------------------------------------------------------------

def latencies_us(socks: dict[str, zmq.Socket], pings: dict[str, Callable], n: int) -> dict[str, np.ndarray]:
    for name, sock in socks.items():   # warm-up: connection, allocators
        for _ in range(100):
            pings[name](sock)
    out: dict[str, list[float]] = {name: [] for name in socks}
    for _ in range(n):
        for name, sock in socks.items():
            t0 = time.perf_counter()
            pings[name](sock)
            out[name].append((time.perf_counter() - t0) * 1e6)
    return {name: np.array(v) for name, v in out.items()}


def throughputs_mb_s(socks: dict[str, zmq.Socket], arr: np.ndarray, repeats: int) -> dict[str, float]:
    header = encode(make("submit", job="echo", params={"data": arr}))[0]
    trips = {"raw": array_raw(b"\x00" * len(header)), "ours": array_ours}
    for name, sock in socks.items():   # warm-up, and the data must come back intact
        back = trips[name](sock, arr)
        assert back.dtype == arr.dtype and np.array_equal(back, arr)
        del back
    times: dict[str, list[float]] = {name: [] for name in socks}
    for _ in range(repeats):
        for name, sock in socks.items():
            t0 = time.perf_counter()
            back = trips[name](sock, arr)
            times[name].append(time.perf_counter() - t0)
            assert back.nbytes == arr.nbytes
            del back
    return {name: 2 * arr.nbytes / 1e6 / statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=2000, help="small-message round trips per side")
    parser.add_argument("--repeats", type=int, default=50, help="timed round trips per array size (median kept)")
    parser.add_argument("--max-repeats-128", type=int, default=6,
                        help="cap on repeats for arrays of 128 MB and more (memory and time)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 16, 128], help="array sizes in MB (2**20 bytes)")
    parser.add_argument("--peer", choices=["process", "thread"], default="process")
    args = parser.parse_args()

    ctx = zmq.Context()
    peers = {"raw": Peer(False, args.peer), "ours": Peer(True, args.peer)}
    socks: dict[str, zmq.Socket] = {}
    for name, peer in peers.items():
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(peer.address)
        socks[name] = sock

    t_start = time.perf_counter()
    header_len = len(encode(make("ping"))[0])
    lat = latencies_us(socks, {"raw": ping_raw(b"\x00" * header_len), "ours": ping_ours}, args.pings)
    rows: list[tuple[str, float, float, str]] = [
        ("ping median (us)", float(np.median(lat["raw"])), float(np.median(lat["ours"])), "lower"),
        ("ping p99 (us)", float(np.percentile(lat["raw"], 99)), float(np.percentile(lat["ours"], 99)), "lower"),
    ]
    rng = np.random.default_rng(0)
    for mb in args.sizes:
        arr = rng.random(int(mb * 2 ** 20) // 4, dtype=np.float32)
        # Small arrays take under a millisecond a trip: more trips, or scheduling noise decides.
        repeats = (min(args.repeats, args.max_repeats_128) if mb >= 128
                   else min(1000, max(args.repeats, round(args.repeats * 16 / mb))))
        mbs = throughputs_mb_s(socks, arr, repeats)
        rows.append((f"{mb:g} MB f32 (MB/s)", mbs["raw"], mbs["ours"], "higher"))
        del arr
    elapsed = time.perf_counter() - t_start

    for sock in socks.values():
        sock.close(0)
    for peer in peers.values():
        peer.stop(ctx)
    ctx.term()

    print(f"AvatarForge protocol vs raw pyzmq: {platform.python_implementation()} {platform.python_version()}, "
          f"pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, peer in a {args.peer}, tcp://127.0.0.1")
    print(f"pings: {args.pings} per side (header {header_len} B); arrays: median of {args.repeats} round trips "
          f"(x 16/MB below 16 MB, at most {args.max_repeats_128} from 128 MB), MB/s = 2 x size / time")
    print(f"{'measure':<22}{'raw pyzmq':>12}{'ours':>12}{'ours/raw':>10}  better")
    for label, raw, ours, better in rows:
        print(f"{label:<22}{raw:>12.1f}{ours:>12.1f}{ours / raw:>10.2f}  {better}")
    print(f"measured in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
