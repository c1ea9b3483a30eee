#!/bin/sh
# Usage: sh compression_experiments/resnet50/train.sh [gpu_id]   (no id: CPU)
set -e
dir=compression_experiments/resnet50
weights=$dir/weights/baseline_resnet50.caffemodel
# the LMDBs and mean file named in train_val.prototxt, and the baseline: each missing one is
# named with the command that makes it (data/README.md has the whole ImageNet recipe)
. compression_experiments/imagenet_inputs.sh
check_imagenet_inputs "$dir/train_val.prototxt" "$weights" ResNet-50
mkdir -p "$dir/weights"
stamp=$(date +%Y%m%d-%H%M)
gpu=""; [ -n "$1" ] && gpu="--gpu $1"
prunekit train --solver "$dir/solver.prototxt" --weights "$weights" $gpu \
  2> "$dir/weights/log_${stamp}_acc.txt" > "$dir/weights/log_${stamp}_prune.txt"
