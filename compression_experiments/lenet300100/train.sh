#!/bin/sh
# Usage: sh compression_experiments/lenet300100/train.sh [gpu_id]   (no id: CPU)
#        SOLVER=solver_mag_weight.prototxt sh compression_experiments/lenet300100/train.sh
# Makes the MNIST LMDBs and the baseline model when they are missing, then prunes it with
# $SOLVER (default solver_mag_weight.prototxt: Han magnitude pruning). Logs: Caffe's glog lines ->
# weights/log_<stamp>_acc.txt; the pruning log -> weights/log_<stamp>_prune.txt (grep app).
set -e
cd "$(dirname "$0")/../.."
dir=compression_experiments/lenet300100
solver=$dir/${SOLVER:-solver_mag_weight.prototxt}
weights=$dir/weights/baseline_lenet300100.caffemodel
mkdir -p "$dir/weights"
gpu=""; [ -n "$1" ] && gpu="--gpu $1"
if [ ! -d data/mnist/mnist_train_lmdb ] || [ ! -d data/mnist/mnist_test_lmdb ]; then
  prunekit data mnist --out data/mnist
fi
if [ ! -f "$weights" ]; then
  echo "train.sh: training the baseline (log: $dir/weights/log_baseline.txt)" >&2
  prunekit train --solver "$dir/baseline_solver.prototxt" $gpu 2> "$dir/weights/log_baseline.txt"
  cp "$dir/weights/baseline_iter_8000.caffemodel" "$weights.tmp"
  mv "$weights.tmp" "$weights"
fi
stamp=$(date +%Y%m%d-%H%M)
echo "train.sh: pruning with $solver; logs in $dir/weights/log_${stamp}_acc.txt and log_${stamp}_prune.txt" >&2
prunekit train --solver "$solver" --weights "$weights" $gpu \
  2> "$dir/weights/log_${stamp}_acc.txt" > "$dir/weights/log_${stamp}_prune.txt"
grep "app\] final" "$dir/weights/log_${stamp}_prune.txt" >&2 || true
grep "accuracy = " "$dir/weights/log_${stamp}_acc.txt" | tail -1 | sed 's/^.*\] */final model: /' >&2
grep "Pruning done" "$dir/weights/log_${stamp}_acc.txt" | sed 's/^.*\] //' >&2
