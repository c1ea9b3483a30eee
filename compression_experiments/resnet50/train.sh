#!/bin/sh
# Usage: sh compression_experiments/resnet50/train.sh [gpu_id]   (no id: CPU)
set -e
dir=compression_experiments/resnet50
weights=$dir/weights/baseline_resnet50.caffemodel
mkdir -p "$dir/weights"
[ -f "$weights" ] || { echo "train.sh: pretrained model missing: put the ResNet-50 caffemodel at $weights" >&2; exit 1; }
stamp=$(date +%Y%m%d-%H%M)
gpu=""; [ -n "$1" ] && gpu="--gpu $1"
prunekit train --solver "$dir/solver.prototxt" --weights "$weights" $gpu \
  2> "$dir/weights/log_${stamp}_acc.txt" > "$dir/weights/log_${stamp}_prune.txt"
