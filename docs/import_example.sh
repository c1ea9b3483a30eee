set -e
# The worked example of docs/import.md, as run for its numbers: run it in an empty folder
# (bash /path/to/repo/docs/import_example.sh; PYTHON=the venv python). Random weights and random
# LMDB images: it shows the mechanics and the MAC/equality numbers, not accuracy.
REPO=$(cd "$(dirname "$0")/.." && pwd)
P=${PYTHON:-python}
export PYTHONPATH=$REPO/src:$REPO/tests/importer:$REPO/tests/cli
# 0. a torchvision ResNet-18 state_dict (random init: no download here) and its ONNX file.
#    torchvision does not import next to the CPU torch here, so the test helper's stub is used.
$P - <<'PY'
import torch
from importer_helpers import torchvision_models
from prunekit.importer.torchvision_source import export_onnx
torch.manual_seed(0)
m = torchvision_models().resnet18(weights=None)
torch.save(m.state_dict(), "resnet18.pth")
m.load_state_dict(torch.load("resnet18.pth", weights_only=True))
export_onnx(m, (1, 3, 224, 224), "resnet18.onnx")
from prune_helpers import write_lmdb
write_lmdb(__import__("pathlib").Path("train_lmdb"), 8, 0, side=224)
write_lmdb(__import__("pathlib").Path("val_lmdb"), 2, 1, side=224)
PY
mkdir -p exp
echo '$ prunekit import --onnx resnet18.onnx ...'
$P -m prunekit.cli import --onnx resnet18.onnx --out-model exp/deploy.prototxt --out-weights exp/resnet18.caffemodel \
  --train-val exp/train_val.prototxt --train-source train_lmdb --test-source val_lmdb \
  --train-batch 2 --test-batch 2 --caffe-input --prune-method L1_Row --prune-ratio 0.52 2>&1 | tail -3
sed -i 's/max_iter: 10000 /max_iter: 2 /; s/test_iter: 10/test_iter: 1/' exp/solver.prototxt
echo '$ prunekit train --solver exp/solver.prototxt --weights exp/resnet18.caffemodel'
$P -m prunekit.cli train --solver exp/solver.prototxt --weights exp/resnet18.caffemodel 2>&1 | grep -E "L1_Row|Pruning done|round 1/1 at iter 0: (conv1|layer4.1.conv2) "
echo '$ prunekit compact ...'
$P -m prunekit.cli compact --model exp/deploy.prototxt --weights exp/weights/_iter_2.caffemodel \
  --out-model exp/small.prototxt --out-weights exp/small.caffemodel --column-conv never 2>&1 | tail -6
echo '$ prunekit flops --model exp/deploy.prototxt'; $P -m prunekit.cli flops --model exp/deploy.prototxt | tail -3
echo '$ prunekit flops --model exp/small.prototxt'; $P -m prunekit.cli flops --model exp/small.prototxt | tail -3
echo '$ prunekit export --model exp/small.prototxt --weights exp/small.caffemodel --onnx exp/small.onnx'
$P -m prunekit.cli export --model exp/small.prototxt --weights exp/small.caffemodel --onnx exp/small.onnx 2>&1 | tail -2
$P - <<'PY'
import numpy as np, onnxruntime as ort
from prune_helpers import deploy_outputs
from pathlib import Path
x = np.random.default_rng(0).uniform(-120, 140, (1, 3, 224, 224)).astype(np.float32)
masked = deploy_outputs(Path("exp/deploy.prototxt"), Path("exp/weights/_iter_2.caffemodel"), x)
s = ort.InferenceSession("exp/small.onnx", providers=["CPUExecutionProvider"])
got = s.run(None, {s.get_inputs()[0].name: x})[0]
print(f"onnxruntime(small.onnx) vs prunekit masked net: max |diff| = {np.abs(got - masked).max():.3g}, "
      f"output scale {np.abs(masked).max():.3g}")
PY
