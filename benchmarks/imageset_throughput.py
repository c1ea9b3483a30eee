#!/usr/bin/env python3
"""Images/s of ``prunekit data imageset`` (decode + resize to 256x256 + raw Datum + LMDB write)
with 1 and with N worker processes, side by side in one run.

The images are ``--images`` real-photo JPEGs (quality 90) made in a temporary folder from
scikit-learn's two sample photos: random crops of 300-427 x 400-640 pixels, the size of typical
ImageNet photos (~500x375). Each round converts them once per worker count, the counts
alternating (1 N, N 1, ...), each into a fresh LMDB; the table shows the median images/s and the
speedup N vs 1, and the CPU time per image of the calling process with N workers (it receives
the Datums and is the one LMDB writer, the bound on a many-core machine). The script checks that both worker counts wrote identical LMDBs (same keys and
values), since the order of results must not depend on the workers.

    python benchmarks/imageset_throughput.py                 # 1 vs 2 workers, 400 images
    python benchmarks/imageset_throughput.py --workers 8 --images 2000

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_imageset_throughput_w<N>.{json,md} and prints
the table. Time only: process start-up and the list-file parse are not included.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import lmdb
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from prunekit.data.image_list import ListEntry  # noqa: E402
from prunekit.data.imageset import ImagesetOptions, convert_imageset  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402


def make_photos(folder: Path, count: int, seed: int) -> list[ListEntry]:
    """``count`` JPEG crops of the sklearn sample photos, labels 0/1 by source photo."""
    from sklearn.datasets import load_sample_images

    photos = [img[:, :, ::-1] for img in load_sample_images().images]  # RGB -> BGR for cv2
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(count):
        src = int(rng.integers(2))
        h, w = int(rng.integers(300, 428)), int(rng.integers(400, 641))
        y, x = int(rng.integers(0, 428 - h)), int(rng.integers(0, 641 - w))
        name = f"img_{i:05d}.jpg"
        cv2.imwrite(str(folder / name), photos[src][y:y + h, x:x + w],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        entries.append(ListEntry(name.encode(), src, i + 1))
    return entries


def convert(folder: Path, entries: list[ListEntry], db: Path, workers: int) -> tuple[float, float]:
    """Seconds to convert all entries into a new LMDB at ``db``, and the CPU seconds this
    process (the LMDB writer, with its result-receiving threads) spent on it."""
    options = ImagesetOptions(resize_height=256, resize_width=256, threads=workers)
    quiet = logging.getLogger("imageset_throughput")
    quiet.disabled = True
    start, cpu = time.perf_counter(), time.process_time()
    convert_imageset(f"{folder}/", entries, str(db), options, "list.txt", quiet)
    return time.perf_counter() - start, time.process_time() - cpu


def lmdb_items(path: Path) -> list[tuple[bytes, bytes]]:
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        items = list(txn.cursor())
    env.close()
    return items


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2, help="N, compared with 1 (default 2)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    command = "python benchmarks/imageset_throughput.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    tmp = tempfile.TemporaryDirectory(prefix="imageset_bench_")
    folder = Path(tmp.name) / "images"
    folder.mkdir()
    entries = make_photos(folder, args.images, args.seed)
    rates: dict[int, list[float]] = {1: [], args.workers: []}
    writer_ms: list[float] = []  # CPU ms per image of this process with N workers
    convert(folder, entries[:20], Path(tmp.name) / "warm", 1)  # imports, page cache
    same = True
    for r in range(args.rounds):
        order = (1, args.workers) if r % 2 == 0 else (args.workers, 1)
        for workers in order:
            db = Path(tmp.name) / f"db_{r}_{workers}"
            seconds, cpu = convert(folder, entries, db, workers)
            rates[workers].append(args.images / seconds)
            if workers == args.workers:
                writer_ms.append(cpu * 1000 / args.images)
        same &= lmdb_items(Path(tmp.name) / f"db_{r}_1") == \
            lmdb_items(Path(tmp.name) / f"db_{r}_{args.workers}")
        print(f"round {r + 1}/{args.rounds}: 1 worker {rates[1][-1]:.0f} images/s, "
              f"{args.workers} workers {rates[args.workers][-1]:.0f} images/s", flush=True)
    tmp.cleanup()

    one, many = statistics.median(rates[1]), statistics.median(rates[args.workers])
    machine = machine_name(torch.device("cpu"))
    now = datetime.now(timezone.utc)
    record = {
        "what": "prunekit data imageset: decode JPEG + resize 256x256 + raw Datum + LMDB write",
        "images": args.images, "workers": args.workers, "rounds": args.rounds,
        "images_per_s_1": one, f"images_per_s_{args.workers}": many, "speedup": many / one,
        "writer_cpu_ms_per_image": statistics.median(writer_ms),
        "identical_lmdbs": same, "load_average": __import__("os").getloadavg(), "rounds_images_per_s": {str(k): v for k, v in rates.items()},
        "units": "images per second (median of rounds)", "machine": machine,
        "cores": len(__import__("os").sched_getaffinity(0)), "opencv": cv2.__version__,
        "torch": torch.__version__, "python": platform.python_version(),
        "date": now.isoformat(timespec="seconds"), "command": command, "batch": None,
    }
    header = ("| date | machine | images | 1 worker images/s | N workers | N workers images/s | "
              "speedup | writer CPU ms/image | identical LMDBs | command |")
    line = (f"| {now.date()} | {machine} | {args.images} | {one:.0f} | {args.workers} | "
            f"{many:.0f} | {many / one:.2f}x | {statistics.median(writer_ms):.2f} | "
            f"{'yes' if same else 'NO'} | `{command}` |")
    print("\n" + header + "\n|" + "---|" * 10 + "\n" + line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y-%m-%dT%H%MZ}_{slug(machine)}_imageset_throughput_w{args.workers}"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{stem}.md").write_text(header + "\n|" + "---|" * 10 + "\n" + line + "\n")
    print(f"wrote {out / stem}.json and .md")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
