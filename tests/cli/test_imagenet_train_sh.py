"""compression_experiments/{vgg16,resnet50}/train.sh check their inputs before training (issue 13,
item 6): each missing LMDB and mean file named in train_val.prototxt, and the baseline caffemodel,
is named with the command that makes it. The test then runs exactly the printed ``prunekit data``
commands (ILSVRC pointing at a small ImageNet-style photo folder) and checks that train.sh no
longer names what they made."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import REPO, run_cli
from photo_set import make_photo_folder

EXPERIMENTS = REPO / "compression_experiments"


def _train_sh(root: Path, net: str, ilsvrc: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ILSVRC=str(ilsvrc),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["sh", f"compression_experiments/{net}/train.sh"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def _imagenet_folder(root: Path) -> Path:
    """train/ with a folder per class, val/ flat with val_labels.txt, as ImageNet ships them."""
    make_photo_folder(root / "train", classes=2, per_class=2, seed=3)
    val = root / "val"
    lines = []
    for path in make_photo_folder(root / "val_by_class", classes=2, per_class=1, seed=4):
        val.mkdir(exist_ok=True)
        path.rename(val / path.name)
        lines.append(f"{path.name} {int(path.parent.name[1:])}\n")
    (root / "val_labels.txt").write_text("".join(lines))
    return root


@pytest.mark.parametrize("net", ["vgg16", "resnet50"])
def test_train_sh_names_missing_inputs_with_the_commands_that_make_them(tmp_path, net):
    root = tmp_path / "repo"
    exp = root / "compression_experiments" / net
    exp.mkdir(parents=True)
    for name in ("train.sh", "train_val.prototxt", "solver.prototxt"):
        shutil.copy(EXPERIMENTS / net / name, exp / name)
    shutil.copy(EXPERIMENTS / "imagenet_inputs.sh", root / "compression_experiments")
    ilsvrc = _imagenet_folder(tmp_path / "ILSVRC2012")

    first = _train_sh(root, net, ilsvrc)
    assert first.returncode == 1, first.stderr
    err = first.stderr
    for what in ("train LMDB data/ilsvrc12/ilsvrc12_train_lmdb",
                 "val LMDB data/ilsvrc12/ilsvrc12_val_lmdb"):
        assert f"missing {what}" in err, err
    assert f"caffemodel compression_experiments/{net}/weights/baseline_{net}.caffemodel" in err, err
    has_mean = net == "resnet50"  # vgg16 subtracts per-channel mean_values
    assert ("missing mean file data/ilsvrc12/imagenet_mean.binaryproto" in err) == has_mean, err
    assert not (exp / "weights").exists()  # nothing started

    commands = [shlex.split(line) for line in err.splitlines()
                if line.startswith(("  prunekit ", "  mkdir -p "))]
    assert [c[:3] for c in commands] == \
        [["mkdir", "-p", "data/ilsvrc12"], ["prunekit", "data", "list"],
         ["prunekit", "data", "imageset"]] * 2 + [["prunekit", "data", "mean"]] * has_mean
    for args in commands:  # exactly as printed
        if args[0] == "mkdir":
            (root / args[2]).mkdir(parents=True, exist_ok=True)
        else:
            run_cli(args[1:], root, check=True)

    second = _train_sh(root, net, ilsvrc)
    assert second.returncode == 1
    assert second.stderr.count("train.sh: missing") == 1, second.stderr
    assert "missing pretrained" in second.stderr
