#!/usr/bin/env python3
"""prunekit's training step vs. the same network written directly in PyTorch, in one run.

For VGG-16 or ResNet-50 this measures, on one device and at one batch size:

  A  prunekit: the Net built from compression_experiments/<model>/deploy.prototxt (phase TRAIN,
     batch set with ``with_batch_size``), one forward + backward per step, exactly the loop of
     ``prunekit time``'s "Plain forward-backward step" line (``time_plain_steps``);
  B  plain:    the hand-written module of benchmarks/plain_models.py doing the same step: same
     input, same weights (copied from the Net by layer name), same train/eval semantics (dropout
     active as in phase TRAIN; BatchNorm on stored statistics, as the deploy's use_global_stats),
     backward of ones from the output (what prunekit does for a net without a loss);
  C  instrumented: ``time_net``'s "Average Forward-Backward", i.e. Caffe's per-layer loop with a
     timer at every layer boundary, each bottom detached and one autograd call per layer (so it
     differs from A; see docs/time.md).

Before timing, one forward of A and B with the same RNG seed must agree (max |diff| of the
logits and of the softmax output is printed and stored). Warm-up steps are not timed. The
measurements alternate in rounds (A B C, then B A C, ...) and the medians over rounds are
reported, so drift and noise on the machine hit all of them. On a GPU, cudnn.benchmark is on and
every timed region starts and ends with torch.cuda.synchronize().

All times are milliseconds per step (one batch of --batch images). The targets (issues): ratio
A/B <= 1.05 for VGG-16 and ResNet-50 on the CPU, and on a GPU at batch 64. On a CPU only the
ratio means something. Both sides do the same work: the Net runs each BatchNorm + Scale pair as
one batch_norm call and its in-place ReLUs in place (Net.fused_pairs, Net.in_place_relus; their
counts are stored), as the plain module's BatchNorm2d(affine) and ReLU(inplace=True) do.

    python benchmarks/time_vs_plain.py --model vgg16 --batch 64 --gpu 0
    python benchmarks/time_vs_plain.py --model resnet50 --batch 2 --iterations 1 --rounds 3

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_time_vs_plain_<model>_b<batch>.json and a .md
with the same stem (one Markdown table line, with the command), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

from plain_models import plain_resnet50, plain_vgg16  # noqa: E402

from prunekit.measure.machine import machine_name
from prunekit import caffe  # noqa: E402
from prunekit.measure.timing import time_net, time_plain_steps  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TRAIN  # noqa: E402

MODELS = {"vgg16": (plain_vgg16, "fc8"), "resnet50": (plain_resnet50, "fc1000")}
_RES_BRANCH = re.compile(r"^res(\d[a-z])_(branch\w+)$")   # res2a_branch2a -> res2a.branch2a
_BN_BRANCH = re.compile(r"^(bn|scale)(\d[a-z])_(branch\w+)$")  # bn2a_branch1 -> res2a.bn_branch1


# ---------------------------------------------------------------------------- the two networks
def build_net(model: str, batch: int, device: torch.device) -> Net:
    path = REPO / "compression_experiments" / model / "deploy.prototxt"
    net_param = with_batch_size(caffe.read_net_prototxt(str(path)), batch)
    net = Net(net_param, TRAIN, source=str(path))
    net.set_seed(0)
    return net.place(device)


def plain_name(caffe_name: str) -> str:
    """The plain module that holds a Caffe layer's blobs (BatchNorm and Scale share one)."""
    m = _RES_BRANCH.match(caffe_name)
    if m:
        return f"res{m.group(1)}.{m.group(2)}"
    m = _BN_BRANCH.match(caffe_name)
    if m:
        return f"res{m.group(2)}.bn_{m.group(3)}"
    if caffe_name == "scale_conv1":
        return "bn_conv1"
    return caffe_name


@torch.no_grad()
def randomise(net: Net, seed: int = 0) -> None:
    """Give the Net non-trivial weights (deploy prototxts have no fillers: all zeros).

    He-normal weights, small biases; BatchNorm statistics as Caffe stores them (sums and a
    moving-average factor); Scale gamma in [0.5, 1) ([0.1, 0.3) closing a residual branch) and
    small beta. Deterministic in ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    for entry, module in net.named_layers():
        blobs = module.caffe_blobs()
        if entry.type in ("Convolution", "InnerProduct"):
            w = blobs[0]
            fan_in = w[0].numel()
            w.copy_(torch.randn(w.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if len(blobs) > 1:
                blobs[1].copy_(torch.randn(blobs[1].shape, generator=g) * 0.01)
        elif entry.type == "BatchNorm":
            mean, var, factor = blobs
            factor.fill_(2.0)  # Caffe's blobs are sums; the running value is blob / factor
            mean.copy_(torch.randn(mean.shape, generator=g) * 0.1 * 2.0)
            var.copy_((0.5 + torch.rand(var.shape, generator=g)) * 2.0)
        elif entry.type == "Scale":
            # the last Scale of a residual branch small, so activations stay O(1) over 16 blocks
            low, high = (0.1, 0.3) if entry.name.endswith("branch2c") else (0.5, 1.0)
            blobs[0].copy_(low + torch.rand(blobs[0].shape, generator=g) * (high - low))
            if len(blobs) > 1:
                blobs[1].copy_(torch.randn(blobs[1].shape, generator=g) * 0.1)


@torch.no_grad()
def copy_weights(net: Net, plain: nn.Module) -> int:
    """Copy every Caffe blob of the Net into the plain module; each plain tensor must be set."""
    targets = {name: t for name, t in plain.named_parameters()}
    targets.update({name: t for name, t in plain.named_buffers()
                    if not name.endswith("num_batches_tracked")})
    done: set[str] = set()
    for entry, module in net.named_layers():
        blobs = module.caffe_blobs()
        if not blobs:
            continue
        owner = plain_name(entry.name)
        if entry.type == "BatchNorm":
            mean, var = module.global_stats()
            pairs = [("running_mean", mean), ("running_var", var)]
        elif entry.type == "Scale":
            pairs = list(zip(("weight", "bias"), blobs))
        else:
            pairs = list(zip(("weight", "bias"), blobs))
        for attr, src in pairs:
            name = f"{owner}.{attr}"
            if name not in targets:
                raise SystemExit(f"layer {entry.name}: no plain tensor {name}")
            dst = targets[name]
            if tuple(dst.shape) != tuple(src.shape):
                raise SystemExit(f"layer {entry.name}: {name} is {list(dst.shape)}, "
                                 f"prunekit blob is {list(src.shape)}")
            dst.copy_(src)
            done.add(name)
    missing = sorted(set(targets) - done)
    if missing:
        raise SystemExit(f"plain tensors not set from the Net: {missing[:5]}...")
    return len(done)


def build_plain(model: str, net: Net, device: torch.device) -> nn.Module:
    """Plain twin in the Net's mode: train() (dropout on), BatchNorm in eval() wherever the
    matching Caffe BatchNorm uses stored statistics (use_global_stats)."""
    plain = MODELS[model][0]()
    copy_weights(net, plain)
    plain.train(net.training)
    global_stats = {plain_name(e.name) for e, m in net.named_layers()
                    if e.type == "BatchNorm" and m.use_global_stats}
    for name, module in plain.named_modules():
        if isinstance(module, nn.BatchNorm2d) and name in global_stats:
            module.eval()
    return plain.to(device)


# ---------------------------------------------------------------------------- check and timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_outputs(model: str, net: Net, plain: nn.Module, x: torch.Tensor) -> dict:
    """One forward of each on ``x`` (the Net's Input layer holds it too) with the same RNG seed,
    hence the same dropout masks: max |diff| of the logits and of the softmax output."""
    fc = MODELS[model][1]
    seen: dict[str, torch.Tensor] = {}
    hooks = [net.layer(fc).register_forward_hook(lambda m, i, o: seen.__setitem__("net", o)),
             dict(plain.named_modules())[fc].register_forward_hook(
                 lambda m, i, o: seen.__setitem__("plain", o))]
    try:
        with torch.no_grad():
            torch.manual_seed(1)
            _, outputs = net()  # the Input layer holds x (set_inputs)
            torch.manual_seed(1)
            prob_plain = plain(x)
    finally:
        for h in hooks:
            h.remove()
    prob_net = outputs["prob"]
    return {
        "max_abs_diff_logits": float((seen["net"] - seen["plain"]).abs().max()),
        "max_abs_logit": float(seen["plain"].abs().max()),
        "max_abs_diff_prob": float((prob_net - prob_plain).abs().max()),
    }


def time_plain_module(plain: nn.Module, x: torch.Tensor, iterations: int) -> float:
    """Mean ms of plain(x) + backward of ones from the output, grads dropped (as A does)."""
    device = x.device
    params = list(plain.parameters())
    sync(device)
    start = time.perf_counter()
    for _ in range(iterations):
        y = plain(x)
        y.backward(torch.ones_like(y))
        for p in params:
            p.grad = None
    sync(device)
    return (time.perf_counter() - start) * 1000.0 / max(iterations, 1)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="vgg16")
    ap.add_argument("--batch", type=int, default=None,
                    help="batch size (default 64 on a GPU, 2 on the CPU)")
    ap.add_argument("--gpu", type=int, default=None, help="CUDA device id; absent: CPU")
    ap.add_argument("--iterations", type=int, default=10, help="timed steps per round and side")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    ap.add_argument("--input", choices=("host", "device"), default="device",
                    help="where the Net's Input layer keeps its batch: on the device, as "
                         "`prunekit time` does, or 'host' (copied to the device every step). The "
                         "plain module always gets a device tensor.")
    ap.add_argument("--no-instrumented", action="store_true", help="skip C (time_net)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    args = ap.parse_args(argv)

    if args.gpu is not None:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu given but CUDA is not available")
        torch.cuda.set_device(args.gpu)  # events and synchronize() then act on this device
        device = torch.device("cuda", args.gpu)
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
    batch = args.batch or (64 if device.type == "cuda" else 2)
    command = "python benchmarks/time_vs_plain.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    torch.manual_seed(0)
    net = build_net(args.model, batch, device)
    randomise(net)
    net.place(device)
    plain = build_plain(args.model, net, device)
    x_host = torch.randn(net.blob_shapes["data"], generator=torch.Generator().manual_seed(2))
    x_dev = x_host.to(device)
    net.layer("data").set_inputs([x_host if args.input == "host" else x_dev])

    check = check_outputs(args.model, net, plain, x_dev)
    print(f"outputs agree? max |diff| logits {check['max_abs_diff_logits']:.3g} "
          f"(max |logit| {check['max_abs_logit']:.3g}), prob {check['max_abs_diff_prob']:.3g}",
          flush=True)

    for _ in range(args.warmup):  # cudnn autotuning, allocator, first-touch: not timed
        time_plain_steps(net, 1)
        time_plain_module(plain, x_dev, 1)
    if not args.no_instrumented:
        time_net(net, 1, plain_loop=False, initial_loss=0.0)  # its own first pass

    a, b, c, c_fwd, c_bwd = [], [], [], [], []
    for r in range(args.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for side in order:
            if side == "A":
                a.append(time_plain_steps(net, args.iterations))
            else:
                b.append(time_plain_module(plain, x_dev, args.iterations))
        if not args.no_instrumented:
            res = time_net(net, args.iterations, plain_loop=False, initial_loss=0.0)
            c.append(res.forward_backward_ms)
            c_fwd.append(res.forward_ms)
            c_bwd.append(res.backward_ms)
        print(f"round {r + 1}/{args.rounds}: prunekit {a[-1]:.2f} ms, plain {b[-1]:.2f} ms"
              + (f", instrumented {c[-1]:.2f} ms" if c else ""), flush=True)
    net.close()

    med = statistics.median
    ratio = med(a) / med(b)
    paired = med([x / y for x, y in zip(a, b)])
    machine = machine_name(device)
    now = datetime.now(timezone.utc)
    row = {
        "model": args.model, "device": str(device), "machine": machine, "batch": batch,
        "prunekit_ms": med(a), "plain_ms": med(b), "ratio": ratio, "paired_ratio": paired,
        "prunekit_min_ms": min(a), "plain_min_ms": min(b), "min_ratio": min(a) / min(b),
        "instrumented_ms": med(c) if c else None,
        "instrumented_forward_ms": med(c_fwd) if c else None,
        "instrumented_backward_ms": med(c_bwd) if c else None,
    }
    record = {
        **row, "units": "ms per step (forward+backward of one batch of `batch` images)",
        "date": now.isoformat(timespec="seconds"), "command": command,
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "iterations": args.iterations, "rounds": args.rounds, "warmup": args.warmup,
        "input": args.input, "phase": "TRAIN", "check": check,
        "fused_bn_scale_pairs": len(net.fused_pairs), "in_place_relus": len(net.in_place_relus),
        "prunekit_rounds_ms": a, "plain_rounds_ms": b, "instrumented_rounds_ms": c,
        "target": "ratio <= 1.05: vgg16 and resnet50 on the CPU; on a GPU at batch 64",
    }

    inst = f"{row['instrumented_ms']:.2f}" if c else "-"
    header = ("| date | model | device | batch | prunekit ms/step | plain ms/step | ratio | "
              "instrumented ms | max abs diff (prob) | command |")
    line = (f"| {now.date()} | {args.model} | {machine} | {batch} | {row['prunekit_ms']:.2f} | "
            f"{row['plain_ms']:.2f} | {ratio:.3f} | {inst} | {check['max_abs_diff_prob']:.2g} | "
            f"`{command}` |")
    print()
    print(f"{'model':<9} {'device':<40} {'batch':>5} {'prunekit ms':>12} {'plain ms':>10} "
          f"{'ratio':>6} {'instr. ms':>10}")
    print(f"{args.model:<9} {machine[:40]:<40} {batch:>5} {row['prunekit_ms']:>12.2f} "
          f"{row['plain_ms']:>10.2f} {ratio:>6.3f} {inst:>10}")
    print(f"(medians of {args.rounds} rounds x {args.iterations} steps; median of per-round ratios "
          f"{paired:.3f}; best of rounds {min(a):.2f} / {min(b):.2f} = {min(a) / min(b):.3f}; "
          f"ms per step of batch {batch})")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y-%m-%dT%H%MZ}_{slug(machine)}_time_vs_plain_{args.model}_b{batch}"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{stem}.md").write_text(header + "\n|" + "---|" * 10 + "\n" + line + "\n")
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
