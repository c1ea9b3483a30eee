#!/usr/bin/env python3
"""Images/s of prunekit's ``Data`` layer on a JPEG LMDB vs a plain torch DataLoader (issue 13).

The LMDB is made here, with prunekit's own Datum and LMDB writers, from real photos:
``--images`` random crops (a third to all of the shorter side), scales and flips of the two photos
scikit-learn ships (``load_sample_images``), resized to 256×256, stored as JPEG Datums (quality
95), plus their mean image as a ``.binaryproto``. Both loaders then produce TRAIN batches of
``--batch`` images: decode with ``cv2.imdecode`` (BGR), random 224×224 crop, random mirror,
subtract the mean image, float32 N×3×224×224 plus labels:

* prunekit: a ``Data`` layer (transform_param crop_size 224, mirror, mean_file) with
  ``PRUNEKIT_DATA_WORKERS`` = W worker processes, batches taken with ``next_batch()``;
* torch: ``torch.utils.data.DataLoader(num_workers=W, batch_size=--batch)`` over a Dataset that
  reads the same LMDB record by key, parses the Datum, decodes with ``cv2.imdecode`` and crops,
  flips and subtracts the mean in numpy (one OpenCV thread and one torch thread per worker, as in
  prunekit's workers), default collate.

For W in ``--workers`` (1 2) the four loaders are timed in interleaved rounds (``--rounds``): each
starts fresh, takes ``2W + 2`` batches to warm up (process start, first decodes), then the time
for ``--batches`` batches gives images/s. Medians over the rounds. Checks (exit status 1 when one
fails): prunekit ≥ 0.95 × the DataLoader at each W (median of the per-round ratios), and
prunekit's W=2 / W=1 ≥ 1.8 (meant for a 2-core machine).

    python benchmarks/data_throughput.py      # on an otherwise idle machine

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_data_throughput_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_files import write_results  # noqa: E402

from prunekit.caffe import array_to_blob, array_to_datum, caffe_pb2, parse_text, write_binaryproto
from prunekit.data.data_layer import DataLayer
from prunekit.data.lmdb_io import write_lmdb
from prunekit.measure.machine import machine_name
from prunekit.net.layers.base import TRAIN

HERE = Path(__file__).resolve().parent
SIZE, CROP = 256, 224


def photo_variants(count: int, seed: int) -> list[np.ndarray]:
    """``count`` 256×256 BGR uint8 images: random crops/scales/flips of sklearn's two photos."""
    from sklearn.datasets import load_sample_images

    photos = [np.ascontiguousarray(p[:, :, ::-1]) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        side = int(rng.integers(min(height, width) // 3, min(height, width) + 1))
        y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        image = cv2.resize(photo[y:y + side, x:x + side], (SIZE, SIZE),
                           interpolation=cv2.INTER_AREA if side > SIZE else cv2.INTER_LINEAR)
        out.append(image[:, ::-1] if rng.random() < 0.5 else image)
    return out


def make_dataset(folder: Path, count: int) -> tuple[Path, Path]:
    """The JPEG LMDB (keys %08d, label = image index mod 10) and its mean file."""
    images = [np.ascontiguousarray(im.transpose(2, 0, 1)) for im in photo_variants(count, 0)]
    db = folder / "train_lmdb"
    write_lmdb(db, ((b"%08d" % i, array_to_datum(im, i % 10, "jpg").SerializeToString())
                    for i, im in enumerate(images)))
    mean = folder / "mean.binaryproto"
    write_binaryproto(mean, array_to_blob(np.mean(images, axis=0, dtype=np.float64)[None]
                                          .astype(np.float32)))
    return db, mean


class LmdbJpegDataset(torch.utils.data.Dataset):
    """The plain-PyTorch reading of the same LMDB: key lookup, Datum, cv2.imdecode, numpy
    transforms (random crop and mirror from numpy's per-worker generator)."""

    def __init__(self, db: Path, mean: np.ndarray) -> None:
        self.db, self.mean, self.env = str(db), mean, None
        with lmdb.open(self.db, readonly=True, lock=False) as env, env.begin() as txn:
            self.keys = list(txn.cursor().iternext(keys=True, values=False))

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int):
        if self.env is None:  # one environment per worker process
            self.env = lmdb.open(self.db, readonly=True, lock=False, readahead=False)
        with self.env.begin() as txn:
            datum = caffe_pb2.Datum.FromString(txn.get(self.keys[index]))
        image = cv2.imdecode(np.frombuffer(datum.data, np.uint8), cv2.IMREAD_COLOR)
        chw = image.transpose(2, 0, 1)
        h0, w0 = np.random.randint(0, SIZE - CROP + 1, size=2)
        out = chw[:, h0:h0 + CROP, w0:w0 + CROP].astype(np.float32)
        out -= self.mean[:, h0:h0 + CROP, w0:w0 + CROP]
        if np.random.rand() < 0.5:
            out = np.ascontiguousarray(out[:, :, ::-1])
        return torch.from_numpy(out), float(datum.label)


def _one_thread(_worker: int) -> None:
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def time_batches(batches, warmup: int, count: int, batch: int) -> float:
    """Images/s over ``count`` batches after ``warmup`` ones."""
    for _ in range(warmup):
        next(batches)
    began = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * batch / (time.perf_counter() - began)


def prunekit_rate(db: Path, mean: Path, workers: int, args) -> float:
    os.environ["PRUNEKIT_DATA_WORKERS"] = str(workers)
    text = (f'name: "data" type: "Data" top: "data" top: "label" transform_param {{ '
            f'crop_size: {CROP} mirror: true mean_file: "{mean}" }} data_param {{ source: "{db}" '
            f'batch_size: {args.batch} backend: LMDB }}')
    layer = DataLayer(parse_text(text, caffe_pb2.LayerParameter()), [], TRAIN)
    layer.set_seed(1)
    try:
        return time_batches(iter(layer.next_batch, None), 2 * workers + 2, args.batches, args.batch)
    finally:
        layer.close()


def torch_rate(dataset: LmdbJpegDataset, workers: int, args) -> float:
    warmup = 2 * workers + 2
    order = [i % len(dataset) for i in range((warmup + args.batches) * args.batch)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, sampler=order,
                                         num_workers=workers, worker_init_fn=_one_thread)
    batches = iter(loader)
    try:
        return time_batches(batches, warmup, args.batches, args.batch)
    finally:
        del batches


def measure(db: Path, mean: Path, args) -> dict:
    """Interleaved rounds: per round, for each W, prunekit then the DataLoader."""
    dataset = LmdbJpegDataset(db, _mean_array(mean))
    rates: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for workers in args.workers:
            for name, rate in (("prunekit", prunekit_rate), ("torch", None)):
                value = (prunekit_rate(db, mean, workers, args) if rate else
                         torch_rate(dataset, workers, args))
                rates.setdefault(f"{name}_w{workers}", []).append(value)
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{k} {v[-1]:.0f}" for k, v in rates.items()), flush=True)
    return rates


def _mean_array(path: Path) -> np.ndarray:
    from prunekit.data.transform import load_mean_file

    return load_mean_file(str(path), "benchmark")


def summarise(rates: dict, workers: list[int]) -> tuple[list[dict], dict]:
    """Rows (per W: medians and the median per-round ratio) and the target checks."""
    rows = []
    for w in workers:
        ours, theirs = rates[f"prunekit_w{w}"], rates[f"torch_w{w}"]
        rows.append({"workers": w, "prunekit_images_per_s": statistics.median(ours),
                     "dataloader_images_per_s": statistics.median(theirs),
                     "ratio": statistics.median(a / b for a, b in zip(ours, theirs)),
                     "prunekit_rounds": ours, "dataloader_rounds": theirs})
    checks = {f"ratio_w{r['workers']}>=0.95": r["ratio"] >= 0.95 for r in rows}
    if 1 in workers and 2 in workers:
        one, two = rates["prunekit_w1"], rates["prunekit_w2"]
        scaling = statistics.median(b / a for a, b in zip(one, two))
        checks["scaling_w2/w1>=1.8"] = scaling >= 1.8
        rows[workers.index(2)]["prunekit_scaling_vs_w1"] = scaling
        dl = statistics.median(b / a for a, b in zip(rates["torch_w1"], rates["torch_w2"]))
        rows[workers.index(2)]["dataloader_scaling_vs_w1"] = dl
    return rows, checks


def table(rows: list[dict], machine: str, batch: int, command: str) -> list[str]:
    lines = ["| workers | prunekit Data layer (images/s) | torch DataLoader (images/s) | "
             "prunekit / DataLoader | scaling vs 1 worker (prunekit, DataLoader) | batch | "
             "machine | command |", "|" + "---|" * 8]
    for r in rows:
        scaling = (f"{r['prunekit_scaling_vs_w1']:.2f}x, {r['dataloader_scaling_vs_w1']:.2f}x"
                   if "prunekit_scaling_vs_w1" in r else "-")
        lines.append(f"| {r['workers']} | {r['prunekit_images_per_s']:.0f} | "
                     f"{r['dataloader_images_per_s']:.0f} | {r['ratio']:.3f} | {scaling} | "
                     f"{batch} | {machine} | `{command}` |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=300, help="JPEG records in the LMDB")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    command = " ".join(["python benchmarks/data_throughput.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    now = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    torch.set_num_threads(1)  # the measuring process only hands out batches
    with tempfile.TemporaryDirectory(prefix="data_throughput_") as folder:
        db, mean = make_dataset(Path(folder), args.images)
        load_before = os.getloadavg()
        rates = measure(db, mean, args)
        load_after = os.getloadavg()
    rows, checks = summarise(rates, args.workers)
    lines = table(rows, machine, args.batch, command)
    lines += ["", "Checks: " + ", ".join(f"{k} {'met' if v else 'MISSED'}"
                                          for k, v in checks.items()),
              "", f"Load average (1 min) before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
              f"on {len(os.sched_getaffinity(0))} cores (other processes compete for the cores "
              "the workers need)"]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_data_throughput_b{args.batch}"
    record = {"date": now.isoformat(timespec="seconds"), "machine": machine, "device": "cpu",
              "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
              "opencv": cv2.__version__, "command": command, "batch": args.batch,
              "images": args.images, "batches": args.batches, "rounds": args.rounds,
              "source": f"{SIZE}x{SIZE} JPEG quality 95", "crop": CROP, "rows": rows,
              "checks": checks, "loadavg_before": load_before, "loadavg_after": load_after}
    write_results(stem, record, lines)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
