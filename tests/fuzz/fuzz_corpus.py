"""The fuzz corpus: seeded mutations of real Caffe files, plus hand-written nasty cases.

:func:`make_materials` builds the originals in a scratch folder with the real commands
(``prunekit data mnist``, ``prunekit train``) and from the experiments' and the shared fixtures'
files; :func:`make_cases` derives the cases from them with one ``random.Random(seed)``, so the
same seed gives byte-identical files and command lines. Each case is a ``prunekit`` command line
(run by tests/fuzz/fuzz_driver.py), the names its error must mention (``needles``: the mutated
file, or the layer for faults found while running) and the output files that must not exist
unless the command succeeded.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lmdb

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "compression_experiments"
FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()
LENET_FIXTURE = FIXTURES / "caffe_increg_lenet5"

SMALL_LMDB_RECORDS = 48  # records copied from the real MNIST LMDBs into the small ones

SOLVER = """net: "{net}"
base_lr: 0.01
momentum: 0.9
lr_policy: "fixed"
max_iter: {max_iter}
display: 1
snapshot: {snapshot}
snapshot_prefix: "{prefix}"
random_seed: 1
solver_mode: CPU
"""


def cli(args: list[str], cwd: Path) -> None:
    """One real ``prunekit`` run that must succeed (to make an original file)."""
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"prunekit {' '.join(args)}: {proc.stderr[-2000:]}")


def _copy_records(src: Path, dst: Path, count: int) -> None:
    with lmdb.open(str(src), readonly=True, lock=False) as env, env.begin() as txn:
        records = list(zip(range(count), txn.cursor().iternext()))
    write_records(dst, [kv for _, kv in records])


def write_records(dst: Path, records: list[tuple[bytes, bytes]]) -> None:
    """A fresh LMDB folder ``dst`` holding ``records`` (keys sorted by LMDB)."""
    with lmdb.open(str(dst), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for key, value in records:
            txn.put(key, value)


def read_records(src: Path) -> list[tuple[bytes, bytes]]:
    with lmdb.open(str(src), readonly=True, lock=False) as env, env.begin() as txn:
        return list(txn.cursor().iternext())


def make_materials(root: Path) -> dict[str, Path]:
    """The original files every mutation starts from, under ``root`` (its cwd for cases)."""
    cli(["data", "mnist", "--out", "mnist"], root)
    (root / "data" / "mnist").mkdir(parents=True)
    for name in ("mnist_train_lmdb", "mnist_test_lmdb"):
        _copy_records(root / "mnist" / name, root / "data" / "mnist" / name, SMALL_LMDB_RECORDS)
    shutil.rmtree(root / "mnist")
    text = (EXPERIMENTS / "lenet5" / "train_val.prototxt").read_text()
    (root / "train_val.prototxt").write_text(text.replace("batch_size: 100", "batch_size: 8"))
    (root / "deploy.prototxt").write_text(
        (EXPERIMENTS / "lenet5" / "deploy.prototxt").read_text().replace("dim: 64", "dim: 2"))
    (root / "solver.prototxt").write_text(
        SOLVER.format(net="train_val.prototxt", max_iter=2, snapshot=2, prefix="snap/lenet"))
    (root / "snap").mkdir()
    cli(["train", "--solver", "solver.prototxt"], root)
    return {
        "train_val": root / "train_val.prototxt",
        "deploy": root / "deploy.prototxt",
        "caffemodel": root / "snap" / "lenet_iter_2.caffemodel",
        "solverstate": root / "snap" / "lenet_iter_2.solverstate",
        "solver": root / "solver.prototxt",
        "lmdb": root / "data" / "mnist" / "mnist_test_lmdb",
    }


# ---------------------------------------------------------------- byte-level mutations
def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(0, max(1, len(data)))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 8, 64])):
        if out:
            out[rng.randrange(len(out))] ^= rng.randrange(1, 256)
    return bytes(out)


# ---------------------------------------------------------------- prototxt field mutations
_NUMBER = re.compile(r"(\b\w+\s*:\s*)(-?\d+(?:\.\d*)?(?:e-?\d+)?)\b")
_STRING = re.compile(r'(\b\w+\s*:\s*)"([^"]*)"')
_ENUM = re.compile(r"(\b\w+\s*:\s*)([A-Z][A-Z_]+)\b")
_NUMBERS = ["0", "-1", "1", "2", "7", "100000", "2147483647", "4294967295", "99999999999",
            "1e30", "-0.5", "nan", "inf"]


def mutate_field(text: str, rng: random.Random) -> str:
    """Change one numeric, string or enum value, or delete / duplicate / swap lines."""
    choice = rng.randrange(5)
    lines = text.splitlines(keepends=True)
    if choice == 0:
        return _replace_one(text, _NUMBER, lambda m: rng.choice(_NUMBERS), rng)
    if choice == 1:
        names = sorted({m.group(2) for m in _STRING.finditer(text)}) + ["", "nope", "data"]
        return _replace_one(text, _STRING, lambda m: '"%s"' % rng.choice(names), rng)
    if choice == 2:
        words = ["MAX", "AVE", "STOCHASTIC", "SUM", "PROD", "TRAIN", "TEST", "NOPE"]
        return _replace_one(text, _ENUM, lambda m: rng.choice(words), rng)
    i = rng.randrange(len(lines))
    if choice == 3:
        return "".join(lines[:i] + lines[i + 1:])
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i] + lines[j]  # a duplicated line at j
    return "".join(lines)


def _replace_one(text: str, pattern: re.Pattern, value, rng: random.Random) -> str:
    matches = list(pattern.finditer(text))
    if not matches:
        return text + "\n"
    m = rng.choice(matches)
    return text[:m.start(2)] + value(m) + text[m.end(2):]


# ---------------------------------------------------------------- cases
def _case(kind: str, n: int, argv: list[str], cwd: Path, needles: list[str],
          outputs: list[Path] = ()) -> dict:
    return {"id": f"{kind}-{n}", "kind": kind, "argv": [str(a) for a in argv], "cwd": str(cwd),
            "needles": needles, "outputs": [str(p) for p in outputs]}


def _deploy_sources(root: Path) -> list[tuple[str, str]]:
    """(name, text) of Input-fed prototxts: the experiments' deploy nets at batch 2."""
    out = []
    for rel in ("lenet5/deploy.prototxt", "lenet5/deploy_bn.prototxt",
                "lenet300100/deploy.prototxt"):
        text = (EXPERIMENTS / rel).read_text().replace("dim: 64", "dim: 2")
        out.append((rel.replace("/", "_"), text))
    return out


def _train_val_sources(root: Path) -> list[tuple[str, str]]:
    """(name, text) of LMDB-fed prototxts reading root/data/mnist (small test batches)."""
    out = [("fixture_train_val", (LENET_FIXTURE / "train_val.prototxt").read_text())]
    for rel in ("lenet5/train_val.prototxt", "lenet5/train_val_bn.prototxt"):
        out.append((rel.replace("/", "_"), (EXPERIMENTS / rel).read_text()))
    return [(name, text.replace("batch_size: 100", "batch_size: 8")) for name, text in out]


def _mutate_bytes_or_field(data: bytes, rng: random.Random, text: bool) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.2:
        return "truncate", truncate(data, rng)
    if roll < 0.4 or not text:
        return "flip", flip_bytes(data, rng)
    return "field", mutate_field(data.decode(), rng).encode()


def prototxt_cases(root: Path, mat: dict, rng: random.Random, count: int) -> list[dict]:
    """Mutated deploy and train_val prototxts through flops, time, test, train and export."""
    folder = root / "proto"
    folder.mkdir()
    deploys, train_vals = _deploy_sources(root), _train_val_sources(root)
    cases = []
    for n in range(count):
        deploy = n % 2 == 0
        name, text = rng.choice(deploys if deploy else train_vals)
        how, data = _mutate_bytes_or_field(text.encode(), rng, text=True)
        path = folder / f"p{n}_{how}_{name}"
        path.write_bytes(data)
        out = folder / f"out{n}"
        if deploy:
            argv = rng.choice([
                ["flops", "--model", path],
                ["time", "--model", path, "--iterations", "1"],
                ["export", "--model", path, "--torchscript", f"{out}.pt"],
                ["compact", "--model", path, "--weights", mat["caffemodel"],
                 "--out_model", f"{out}.prototxt", "--out_weights", f"{out}.caffemodel",
                 "--column_conv", "never"]])
        elif n % 10 == 1:
            solver = folder / f"solver{n}.prototxt"
            solver.write_text(SOLVER.format(net=path, max_iter=2, snapshot=0, prefix=out))
            argv = ["train", "--solver", solver]
        else:
            argv = ["test", "--model", path, "--weights", mat["caffemodel"], "--iterations", "1"]
        outputs = [Path(f"{out}{ext}") for ext in (".pt", ".prototxt", ".caffemodel")]
        cases.append(_case("prototxt", n, argv, root, [path.name], outputs))
    return cases


def _net_field_mutation(data: bytes, rng: random.Random) -> bytes:
    """A structurally valid caffemodel that does not fit: renamed, missing or reshaped blobs."""
    from prunekit.caffe import caffe_pb2

    net = caffe_pb2.NetParameter.FromString(data)
    with_blobs = [layer for layer in net.layer if len(layer.blobs)]
    layer = rng.choice(with_blobs)
    choice = rng.randrange(6)
    if choice == 0:
        layer.name = layer.name + "_renamed"
    elif choice == 1:
        for other in net.layer:
            other.name = "x_" + other.name
    elif choice == 2:
        del layer.blobs[:]
    elif choice == 3:
        dims = layer.blobs[0].shape.dim
        dims[rng.randrange(len(dims))] = rng.choice([0, 1, 3, 1 << 40])
    elif choice == 4:
        keep = rng.choice(with_blobs)
        for other in list(net.layer):
            if other is not keep:
                net.layer.remove(other)
    else:
        layer.blobs[-1].data.append(1.0)
    return net.SerializeToString()


def caffemodel_cases(root: Path, mat: dict, rng: random.Random, count: int) -> list[dict]:
    """Mutated snapshot and fixture caffemodels through test, flops, compact, decompose, export."""
    folder = root / "model"
    folder.mkdir()
    sources = [mat["caffemodel"], LENET_FIXTURE / "baseline_lenet5.caffemodel"]
    cases = []
    for n in range(count):
        data = rng.choice(sources).read_bytes()
        roll = rng.random()
        how, data = (("field", _net_field_mutation(data, rng)) if roll < 0.4
                     else _mutate_bytes_or_field(data, rng, text=False))
        path = folder / f"m{n}_{how}.caffemodel"
        path.write_bytes(data)
        out = folder / f"out{n}"
        argv = rng.choice([
            ["test", "--model", mat["train_val"], "--weights", path, "--iterations", "1"],
            ["flops", "--model", mat["deploy"], "--weights", path],
            ["compact", "--model", mat["deploy"], "--weights", path, "--out_model",
             f"{out}.prototxt", "--out_weights", f"{out}.caffemodel", "--column_conv", "never"],
            ["decompose", "--model", mat["deploy"], "--weights", path, "--save_model", out,
             "--layer", "conv2", "--K", "4"],
            ["export", "--model", mat["deploy"], "--weights", path, "--torchscript", f"{out}.pt"]])
        outputs = [Path(f"{out}{ext}") for ext in (".pt", ".prototxt", ".caffemodel", ".json")]
        cases.append(_case("caffemodel", n, argv, root, [path.name], outputs))
    return cases


class _RunsCode:
    """A pickle that would create a file if unpickled: a refused pickle must never run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _state_payloads(marker: Path) -> list[object]:
    """prunekit_state contents of the wrong structure (what torch.save would write)."""
    import torch

    return [{"format": 1}, {"format": 1, "seed": "x"}, [1, 2, 3], {"format": 2},
            {"format": 1, "seed": 1, "torch_rng": torch.zeros(3), "cuda_rng": [],
             "smoothed_loss": {}, "train_data": [], "test_data": [], "hooks": [],
             "extra_iter_size": 0, "lr_override": None},
            {"format": 1, "seed": 1, "torch_rng": torch.get_rng_state(), "cuda_rng": [],
             "smoothed_loss": {"a": 1}, "train_data": [{}], "test_data": [[{"x": 1}]],
             "hooks": {}, "extra_iter_size": "a", "lr_override": None},
            _RunsCode(marker)]


def pickled_solverstate(data: bytes, marker: Path) -> bytes:
    """The solverstate ``data`` with a prunekit_state whose unpickling would create ``marker``."""
    import io
    import pickle

    from prunekit.caffe import caffe_pb2

    state = caffe_pb2.SolverState.FromString(data)
    buffer = io.BytesIO()
    pickle.dump(_RunsCode(marker), buffer)
    state.prunekit_state = buffer.getvalue()
    return state.SerializeToString()


def _solverstate_field_mutation(data: bytes, rng: random.Random, marker: Path) -> bytes:
    import io
    import pickle

    import torch

    from prunekit.caffe import caffe_pb2

    state = caffe_pb2.SolverState.FromString(data)
    choice = rng.randrange(5)
    if choice == 0:
        payload = rng.choice(_state_payloads(marker))
        buffer = io.BytesIO()
        if isinstance(payload, _RunsCode):
            pickle.dump(payload, buffer)
        else:
            torch.save(payload, buffer)
        state.prunekit_state = buffer.getvalue()
    elif choice == 1:
        state.prunekit_state = flip_bytes(state.prunekit_state, rng)
    elif choice == 2:
        del state.history[rng.randrange(len(state.history))]
    elif choice == 3:
        state.learned_net = rng.choice(["", "nope.caffemodel", str(marker.parent)])
    else:
        state.history[0].shape.dim[0] = rng.choice([0, 7, 1 << 33])
    return state.SerializeToString()


def solverstate_cases(root: Path, mat: dict, rng: random.Random, count: int) -> list[dict]:
    """Mutated solverstates resumed by ``train --snapshot`` (for one more iteration)."""
    folder = root / "state"
    folder.mkdir()
    marker = root / "PICKLE_RAN"
    original = mat["solverstate"].read_bytes()
    cases = []
    for n in range(count):
        how, data = (("field", _solverstate_field_mutation(original, rng, marker))
                     if rng.random() < 0.5 else _mutate_bytes_or_field(original, rng, text=False))
        path = folder / f"s{n}_{how}.solverstate"
        path.write_bytes(data)
        solver = folder / f"resume{n}.prototxt"
        solver.write_text(SOLVER.format(net=mat["train_val"], max_iter=3, snapshot=0,
                                        prefix=folder / f"r{n}"))
        argv = ["train", "--solver", solver, "--snapshot", path]
        cases.append(_case("solverstate", n, argv, root, [path.name],
                           [folder / f"r{n}_iter_3.caffemodel"]))
    return cases


def _datum_mutation(value: bytes, rng: random.Random) -> tuple[str, bytes]:
    from prunekit.caffe import caffe_pb2

    datum = caffe_pb2.Datum.FromString(value)
    choice = rng.randrange(7)
    if choice == 0:
        datum.label = rng.choice([10, -1, 1000, 2**31 - 1])
        return "label", datum.SerializeToString()
    if choice == 1:
        field = rng.choice(["channels", "height", "width"])
        setattr(datum, field, rng.choice([0, 2, 27, 1 << 20]))
        return "shape", datum.SerializeToString()
    if choice == 2:
        datum.data = datum.data[:rng.randrange(len(datum.data))]
        return "short", datum.SerializeToString()
    if choice == 3:
        datum.encoded = True
        return "encoded", datum.SerializeToString()
    if choice == 4:
        return "empty", b""
    if choice == 5:
        return "truncate", truncate(value, rng)
    return "flip", flip_bytes(value, rng)


def lmdb_cases(root: Path, mat: dict, rng: random.Random, count: int) -> list[dict]:
    """Copies of the small MNIST test LMDB with bad records, scored by ``prunekit test``."""
    folder = root / "lmdbs"
    folder.mkdir()
    records = read_records(mat["lmdb"])
    text = mat["train_val"].read_text()
    cases = []
    for n in range(count):
        mutated = list(records)
        hows = set()
        for i in rng.sample(range(8), rng.choice([1, 1, 3])):  # within the first batches read
            how, value = _datum_mutation(mutated[i][1], rng)
            mutated[i] = (mutated[i][0], value)
            hows.add(how)
        how = "+".join(sorted(hows))
        db = folder / f"l{n}_{how}_lmdb"
        write_records(db, mutated)
        net = folder / f"net{n}.prototxt"
        net.write_text(text.replace("data/mnist/mnist_test_lmdb", str(db)))
        argv = ["test", "--model", net, "--weights", mat["caffemodel"], "--iterations", "2"]
        needles = [db.name] + (["accuracy", "loss"] if "label" in hows else [])
        cases.append(_case("lmdb", n, argv, root, needles))
    return cases


def flip_page_headers(data: bytes, rng: random.Random, page: int = 4096) -> bytes:
    """Flip bytes in the 16-byte headers of random pages (page number, flags, bounds) or the
    meta pages' root pointers: the damage LMDB itself can notice (MDB_CORRUPTED)."""
    out = bytearray(data)
    for _ in range(rng.choice([1, 2, 4])):
        start = rng.randrange(max(1, len(out) // page)) * page
        out[start + rng.randrange(16 if rng.random() < 0.7 else 128)] ^= rng.randrange(1, 256)
    return bytes(out)


def lmdb_page_cases(root: Path, mat: dict, rng: random.Random, count: int) -> list[dict]:
    """Copies of the small LMDB with flipped bytes anywhere in data.mdb (pages, not records)."""
    folder = root / "pages"
    folder.mkdir()
    text = mat["train_val"].read_text()
    cases = []
    for n in range(count):
        db = folder / f"page{n}_lmdb"
        shutil.copytree(mat["lmdb"], db)
        (db / "data.mdb").write_bytes(flip_page_headers((db / "data.mdb").read_bytes(), rng))
        net = folder / f"net{n}.prototxt"
        net.write_text(text.replace("data/mnist/mnist_test_lmdb", str(db)))
        argv = ["test", "--model", net, "--weights", mat["caffemodel"], "--iterations", "2"]
        cases.append(_case("lmdb_page", n, argv, root, [db.name]))
    return cases


def output_cases(root: Path, mat: dict) -> list[dict]:
    """Outputs into a missing folder or under a file: one line naming the path, nothing written."""
    folder = root / "outputs"
    folder.mkdir()
    (folder / "afile").write_text("a file, not a folder\n")
    deploy, model = mat["deploy"], mat["caffemodel"]
    cases = []
    for where in ("missing", "afile"):
        base = folder / where
        other_model, other_weights = folder / f"{where}.prototxt", folder / f"{where}.caffemodel"
        runs = [
            (["time", "--model", deploy, "--iterations", "1", "--json", base / "t.json"], []),
            (["flops", "--model", deploy, "--json", base / "f.json"], []),
            (["export", "--model", deploy, "--weights", model, "--onnx", base / "m.onnx"], []),
            (["export", "--model", deploy, "--weights", model, "--torchscript", base / "m.pt"], []),
            (["compact", "--model", deploy, "--weights", model, "--out_model", other_model,
              "--out_weights", base / "c.caffemodel", "--column_conv", "never"], [other_model]),
            (["compact", "--model", deploy, "--weights", model, "--out_model", base / "c.prototxt",
              "--out_weights", other_weights, "--column_conv", "never"], [other_weights]),
            (["decompose", "--model", deploy, "--weights", model, "--save_model", base / "d",
              "--layer", "conv2", "--K", "4"], []),
        ]
        for argv, outs in runs:
            cases.append(_case("output", len(cases), argv, root, [str(base)], outs))
    cases.append(_case("output", len(cases), ["data", "mnist", "--out", folder / "afile" / "m"],
                       root, ["afile"]))
    cases.append(_case("output", len(cases), ["data", "mnist", "--out", folder / "afile"], root,
                       ["afile"]))
    return cases


_INPUT = 'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
_CONV = ('layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" '
         'convolution_param {{ {conv} weight_filler {{ type: "xavier" }} }} }}\n')


def _dims(*dims: int) -> str:
    return " ".join(f"dim: {d}" for d in dims)


def _net(*layers: str) -> str:
    return 'name: "nasty"\n' + "".join(layers)


def _conv(conv: str, name: str = "conv", bottom: str = "data", top: str = "conv") -> str:
    return _CONV.format(name=name, bottom=bottom, top=top, conv=conv)


def nasty_models() -> dict[str, str]:
    """Hand-written prototxts each wrong in one way (name -> text)."""
    ok_input = _INPUT.format(dims=_dims(2, 1, 8, 8))
    relu = 'layer {{ name: "{n}" type: "ReLU" bottom: "{b}" top: "{t}" }}\n'
    conv3 = _conv("num_output: 4 kernel_size: 3")
    return {
        "huge_dims": _net(_INPUT.format(dims=_dims(100000, 1000, 1000, 1000))),
        "huge_input_conv": _net(_INPUT.format(dims=_dims(4096, 3, 2048, 2048)),
                                _conv("num_output: 64 kernel_size: 3")),
        "huge_num_output": _net(ok_input, _conv("num_output: 2000000000 kernel_size: 3")),
        "huge_ip": _net(ok_input, 'layer { name: "ip" type: "InnerProduct" bottom: "data" '
                        'top: "ip" inner_product_param { num_output: 1000000000 } }\n'),
        "zero_dim": _net(_INPUT.format(dims=_dims(2, 0, 8, 8)), conv3),
        "zero_batch": _net(_INPUT.format(dims=_dims(0, 1, 8, 8)), conv3),
        "negative_dim": _net(_INPUT.format(dims=_dims(2, -3, 8, 8)), conv3),
        "zero_stride": _net(ok_input, _conv("num_output: 4 kernel_size: 3 stride: 0")),
        "zero_kernel": _net(ok_input, _conv("num_output: 4 kernel_size: 0")),
        "zero_num_output": _net(ok_input, _conv("num_output: 0 kernel_size: 3")),
        "kernel_too_big": _net(ok_input, _conv("num_output: 4 kernel_size: 9")),
        "bad_group": _net(_INPUT.format(dims=_dims(2, 3, 8, 8)),
                          _conv("num_output: 4 kernel_size: 3 group: 2")),
        "zero_pool_stride": _net(ok_input, 'layer { name: "pool" type: "Pooling" bottom: "data" '
                                 'top: "pool" pooling_param { pool: MAX kernel_size: 2 '
                                 'stride: 0 } }\n'),
        "cycle": _net(ok_input, relu.format(n="a", b="b", t="a"), relu.format(n="b", b="a", t="b")),
        "duplicate_names": _net(ok_input, relu.format(n="r", b="data", t="x"),
                                relu.format(n="r", b="x", t="y")),
        "multiple_sources": _net(ok_input, relu.format(n="a", b="data", t="x"),
                                 relu.format(n="b", b="data", t="x")),
        "missing_bottom": _net(ok_input, relu.format(n="a", b="nobody", t="x")),
        "python_layer": _net(ok_input, 'layer { name: "py" type: "Python" bottom: "data" top: "p" '
                             'python_param { module: "os" layer: "system" } }\n'),
        "concat_mismatch": _net(ok_input, _INPUT.format(dims=_dims(2, 1, 4, 4)).replace(
            '"data"', '"other"'), 'layer { name: "cat" type: "Concat" bottom: "data" '
            'bottom: "other" top: "cat" }\n'),
        "eltwise_mismatch": _net(ok_input, _conv("num_output: 4 kernel_size: 3"),
                                 'layer { name: "sum" type: "Eltwise" bottom: "data" '
                                 'bottom: "conv" top: "sum" }\n'),
        "reshape_count": _net(ok_input, 'layer { name: "r" type: "Reshape" bottom: "data" top: "r" '
                              'reshape_param { shape { dim: 7 dim: 5 } } }\n'),
        "softmax_axis": _net(ok_input, 'layer { name: "s" type: "Softmax" bottom: "data" top: "s" '
                             'softmax_param { axis: 9 } }\n'),
        "ip_axis": _net(ok_input, 'layer { name: "ip" type: "InnerProduct" bottom: "data" '
                        'top: "ip" '
                        'inner_product_param { num_output: 3 axis: -7 } }\n'),
        "slice_points": _net(ok_input, 'layer { name: "s" type: "Slice" bottom: "data" top: "a" '
                             'top: "b" slice_param { axis: 1 slice_point: 5 } }\n'),
        "empty": "",
        "no_layers": 'name: "nothing"\n',
        "huge_data_batch": (EXPERIMENTS / "lenet5" / "train_val.prototxt").read_text().replace(
            "batch_size: 100", "batch_size: 2000000000"),
        "zero_data_batch": (EXPERIMENTS / "lenet5" / "train_val.prototxt").read_text().replace(
            "batch_size: 100", "batch_size: 0"),
    }


def nasty_cases(root: Path, mat: dict) -> list[dict]:
    """Hand-written nasty models, binary and empty files, folders given as files."""
    folder = root / "nasty"
    folder.mkdir()
    (folder / "a_folder.prototxt").mkdir()
    (folder / "a_folder.caffemodel").mkdir()
    cases = []
    for name, text in nasty_models().items():
        path = folder / f"{name}.prototxt"
        path.write_text(text)
        runs = ([["test", "--model", path, "--weights", mat["caffemodel"], "--iterations", "1"]]
                if "data_batch" in name else
                [["flops", "--model", path], ["time", "--model", path, "--iterations", "1"]])
        for argv in runs:
            cases.append(_case("nasty", len(cases), argv, root, [path.name]))
    binary = folder / "binary.prototxt"
    binary.write_bytes(mat["caffemodel"].read_bytes())
    empty = folder / "empty.caffemodel"
    empty.write_bytes(b"")
    text_model = folder / "text.caffemodel"
    text_model.write_text(mat["deploy"].read_text())
    pickled = folder / "pickle.solverstate"
    pickled.write_bytes(pickled_solverstate(mat["solverstate"].read_bytes(), root / "PICKLE_RAN"))
    deploy = mat["deploy"]
    for argv, needle in [
        (["train", "--solver", mat["solver"], "--snapshot", pickled], pickled.name),
        (["flops", "--model", binary], binary.name),
        (["flops", "--model", folder / "a_folder.prototxt"], "a_folder.prototxt"),
        (["flops", "--model", deploy, "--weights", folder / "a_folder.caffemodel"], "a_folder"),
        (["flops", "--model", deploy, "--weights", empty], empty.name),
        (["flops", "--model", deploy, "--weights", text_model], text_model.name),
        (["test", "--model", mat["train_val"], "--weights", empty, "--iterations", "1"],
         empty.name),
        (["train", "--solver", binary], binary.name),
        (["train", "--solver", folder / "a_folder.prototxt"], "a_folder.prototxt"),
        (["train", "--solver", mat["solver"], "--snapshot", empty], empty.name),
        (["time", "--model", deploy, "--batch_size", "0", "--iterations", "1"], "batch"),
        (["time", "--model", deploy, "--batch_size", "-4", "--iterations", "1"], "batch"),
        (["time", "--model", deploy, "--batch_size", "100000000", "--iterations", "1"], "batch"),
        (["test", "--model", mat["train_val"], "--weights", mat["caffemodel"],
          "--iterations", "0"], "iterations"),
    ]:
        cases.append(_case("nasty", len(cases), argv, root, [needle]))
    return cases


KINDS = {  # kind -> (builder, cases of that kind per run)
    "prototxt": (prototxt_cases, 80),
    "caffemodel": (caffemodel_cases, 40),
    "solverstate": (solverstate_cases, 24),
    "lmdb": (lmdb_cases, 30),
    "lmdb_page": (lmdb_page_cases, 12),
}


def make_cases(root: Path, mat: dict, seed: int) -> list[dict]:
    """Every case of the corpus, in a fixed order for a given ``seed``."""
    rng = random.Random(seed)
    cases = []
    for builder, count in KINDS.values():
        cases += builder(root, mat, rng, count)
    return cases + output_cases(root, mat) + nasty_cases(root, mat)
