#!/bin/sh
# Usage: sh compression_experiments/lenet5/train.sh [gpu_id]   (no id: CPU)
#        SOLVER=solver_spp.prototxt sh compression_experiments/lenet5/train.sh   (SPP instead of IncReg)
# Makes the MNIST LMDBs and the baseline model when they are missing, then prunes it with
# $SOLVER (default solver.prototxt). Logs as in Caffe_IncReg: Caffe's glog lines ->
# weights/log_<stamp>_acc.txt; the pruning log -> weights/log_<stamp>_prune.txt (grep app);
# the run as a figure (accuracy, loss, phases, speedup, final ratios) -> weights/log_<stamp>.png.
set -e
cd "$(dirname "$0")/../.."
dir=compression_experiments/lenet5
solver=$dir/${SOLVER:-solver.prototxt}
weights=$dir/weights/baseline_lenet5.caffemodel
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
grep "app" "$dir/weights/log_${stamp}_prune.txt" | grep "stage = 1) finished\|All 'retrain' done" >&2 || true
grep "Pruning done" "$dir/weights/log_${stamp}_acc.txt" | sed 's/^.*\] //' >&2 || true
prunekit plot --logs "$dir/weights/log_${stamp}_acc.txt" "$dir/weights/log_${stamp}_prune.txt" \
  --out "$dir/weights/log_${stamp}.png" >&2
