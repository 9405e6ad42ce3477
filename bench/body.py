"""The `body` job's costs on this machine: Anny load, a full job at several
texture sizes, glTF export, and a fresh server's start and first `hello`.

    .venv/bin/python bench/body.py [--sizes 512 1024 2048] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests.support, for the server helper

from avatarforge.backend.config import BackendConfig  # noqa: E402
from avatarforge.backend.formats.gltf import write_glb  # noqa: E402
from avatarforge.backend.pipelines import JobContext  # noqa: E402
from avatarforge.backend.pipelines.body import BodyPipeline  # noqa: E402
from avatarforge.protocol.client import Client  # noqa: E402
from tests.support.server import BackendProcess  # noqa: E402


def seconds(fn, repeats: int) -> float:
    """Median wall time of `fn` over `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = BackendConfig(models_dir=None)
    pipeline = BodyPipeline()

    def job(size: int, seed: int = 0):
        params = pipeline.normalise({"texture_size": size, "seed": seed}, config)
        return pipeline.run(params, JobContext(config=config))[0]

    rows = [("first job, Anny load included (1024 px)", seconds(lambda: job(1024), 1))]
    for size in args.sizes:
        rows.append((f"body job, {size} px texture", seconds(lambda: job(size), args.repeats)))
    avatar = job(1024)
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("write_glb (1024 px)", seconds(lambda: write_glb(avatar, Path(tmp) / "a.glb"), args.repeats)))
        t0 = time.perf_counter()
        with BackendProcess(Path(tmp) / "store", plugins=False) as server:
            rows.append(("server start to listening", time.perf_counter() - t0))
            with Client(server.address) as client:
                rows.append(("first hello on a fresh server", seconds(client.connect, 1)))
    for name, value in rows:
        print(f"{name:<44}{value * 1000:>10.1f} ms")


if __name__ == "__main__":
    main()
