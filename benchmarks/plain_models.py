"""VGG-16 and ResNet-50 written directly in PyTorch: the baseline for prunekit's timings.

`prunekit time` builds its module from compression_experiments/<model>/deploy.prototxt; these
hand-written modules have the same layers and shapes, so the gap between the two is prunekit's
own overhead. Nothing here imports prunekit.

Shapes follow the deploy prototxts (input N x 3 x 224 x 224, output N x 1000 softmax
probabilities unless softmax=False):
  * plain_vgg16: configuration D, 13 convs 3x3 pad 1 + ReLU, 5 max pools 2x2/2, fc6/fc7 4096 with
    ReLU and Dropout(0.5), fc8 1000. 138,357,544 parameters.
  * plain_resnet50: the Caffe model-zoo ResNet-50 (KaimingHe/deep-residual-networks): conv1 7x7/2
    with bias, stride 2 in branch1 and branch2a of res3a/res4a/res5a, max pool 3x3/2 with Caffe's
    ceil rounding (112 -> 56, i.e. ceil_mode=True), average pool 7x7/1. Caffe's BatchNorm
    (use_global_stats) + Scale(bias) is one BatchNorm2d with affine=True in eval mode; eps 1e-5
    is Caffe's default too. 25,557,096 learnable parameters (torchvision's 25,557,032 + conv1's
    64 biases).
Module names are the Caffe layer names where one module stands for one layer (conv1_1, pool5,
fc6, conv1, bn_conv1, fc1000, ...); a ResNet block res2a holds branch1/branch2a/... and their
bn_* modules.

Example:
    python benchmarks/plain_models.py              # parameter counts and output shapes
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# (stage, number of convs) for VGG-16 configuration D
_VGG16_STAGES = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]

# (stage, block letters, bottleneck width, output width, stride of the first block)
_RESNET50_STAGES = [
    (2, "abc", 64, 256, 1),
    (3, "abcd", 128, 512, 2),
    (4, "abcdef", 256, 1024, 2),
    (5, "abc", 512, 2048, 2),
]


def plain_vgg16(*, softmax: bool = True) -> nn.Module:
    """VGG-16 as in compression_experiments/vgg16/deploy.prototxt (ends in Softmax "prob")."""
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    c_in = 3
    for stage, n, c_out in _VGG16_STAGES:
        for i in range(1, n + 1):
            layers[f"conv{stage}_{i}"] = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
            layers[f"relu{stage}_{i}"] = nn.ReLU(inplace=True)
            c_in = c_out
        layers[f"pool{stage}"] = nn.MaxPool2d(kernel_size=2, stride=2)
    layers["flatten"] = nn.Flatten(1)
    layers["fc6"] = nn.Linear(512 * 7 * 7, 4096)
    layers["relu6"] = nn.ReLU(inplace=True)
    layers["drop6"] = nn.Dropout(0.5)
    layers["fc7"] = nn.Linear(4096, 4096)
    layers["relu7"] = nn.ReLU(inplace=True)
    layers["drop7"] = nn.Dropout(0.5)
    layers["fc8"] = nn.Linear(4096, 1000)
    if softmax:
        layers["prob"] = nn.Softmax(dim=1)
    return nn.Sequential(layers)


class Bottleneck(nn.Module):
    """One ResNet-50 block: 1x1 (stride s) -> 3x3 -> 1x1, plus identity or 1x1/s projection."""

    def __init__(self, c_in: int, width: int, c_out: int, stride: int, project: bool):
        super().__init__()
        if project:
            self.branch1 = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            self.bn_branch1 = nn.BatchNorm2d(c_out)
        else:
            self.branch1 = None
            self.bn_branch1 = None
        self.branch2a = nn.Conv2d(c_in, width, 1, stride=stride, bias=False)
        self.bn_branch2a = nn.BatchNorm2d(width)
        self.branch2b = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn_branch2b = nn.BatchNorm2d(width)
        self.branch2c = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn_branch2c = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1 is None else self.bn_branch1(self.branch1(x))
        y = self.relu(self.bn_branch2a(self.branch2a(x)))
        y = self.relu(self.bn_branch2b(self.branch2b(y)))
        y = self.bn_branch2c(self.branch2c(y))
        return self.relu(y + shortcut)


def plain_resnet50(*, softmax: bool = True) -> nn.Module:
    """ResNet-50 as in compression_experiments/resnet50/deploy.prototxt (ends in Softmax "prob").

    Call .eval() before timing or comparing: Caffe's BatchNorm there uses stored statistics.
    """
    layers: "OrderedDict[str, nn.Module]" = OrderedDict()
    layers["conv1"] = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=True)
    layers["bn_conv1"] = nn.BatchNorm2d(64)
    layers["conv1_relu"] = nn.ReLU(inplace=True)
    layers["pool1"] = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    c_in = 64
    for stage, letters, width, c_out, first_stride in _RESNET50_STAGES:
        for i, letter in enumerate(letters):
            layers[f"res{stage}{letter}"] = Bottleneck(
                c_in, width, c_out, stride=first_stride if i == 0 else 1, project=(i == 0))
            c_in = c_out
    layers["pool5"] = nn.AvgPool2d(kernel_size=7, stride=1)
    layers["flatten"] = nn.Flatten(1)
    layers["fc1000"] = nn.Linear(2048, 1000)
    if softmax:
        layers["prob"] = nn.Softmax(dim=1)
    return nn.Sequential(layers)


def _main() -> None:
    x = torch.zeros(2, 3, 224, 224)
    for name, build in (("vgg16", plain_vgg16), ("resnet50", plain_resnet50)):
        model = build().eval()
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            y = model(x)
        print(f"{name}: {params:,} parameters, output {list(y.shape)}")


if __name__ == "__main__":
    _main()
