#!/usr/bin/env bash
# Every GPU measurement that benchmarks/README.md lists as owed, in one run on one GPU, under 9
# minutes in all (each step has its own time limit; a step that fails or runs out is logged and
# the suite goes on). Results go to benchmarks/results/ as usual; the log and a tarball of the new
# results files go to $OUT when set (the device machine's output folder), else to ./gpu_suite_out.
#
#   bash benchmarks/gpu_suite.sh            # from the repository root, GPU 0
#
# Packages the GPU machine's Python may lack (lmdb, mlxtend) are installed from wheels in .whl/
# when that folder exists (see docs/gpu.md for how to carry them); prunekit runs from src/.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-gpu_suite_out}
mkdir -p "$out"
log="$out/gpu_suite.log"
py=${PYTHON:-python3}
if [ -d .whl ]; then
  $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
stamp_file=$(mktemp); touch "$stamp_file"
start=$(date +%s)

step() {  # step SECONDS NAME COMMAND...
  limit=$1; name=$2; shift 2
  echo "=== $(date -u +%H:%M:%S) $name (limit ${limit}s): $*" | tee -a "$log"
  t0=$(date +%s)
  timeout "$limit" "$@" >>"$log" 2>&1
  rc=$?
  echo "=== $name: exit $rc after $(( $(date +%s) - t0 ))s" | tee -a "$log"
}

nvidia-smi -L >>"$log" 2>&1
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" >>"$log" 2>&1
( $py setup.py build_ext --inplace >/dev/null 2>&1 ) || echo "C host step not built: NumPy fallback" >>"$log"

# 1. engine vs a plain PyTorch module (issue: training step <= 1.05 at batch 64)
step 45 time_vs_plain_vgg16 $py benchmarks/time_vs_plain.py --model vgg16 --gpu 0 --batch 64 --iterations 5 --rounds 3 --warmup 3
step 45 time_vs_plain_resnet50 $py benchmarks/time_vs_plain.py --model resnet50 --gpu 0 --batch 64 --iterations 5 --rounds 3 --warmup 3
# 2. IncReg's per-iteration overhead on VGG-16 at batch 32 (target <= 3%)
step 50 prune_overhead_vgg16 $py benchmarks/prune_overhead.py --model vgg16 --gpu 0 --batch 32 --warmup 10 --iterations 20 --rounds 3
# 3. compacted, decomposed and column nets against the dense ones at batch 64
step 50 compact_vgg16 $py benchmarks/compact_speedup.py --model vgg16 --targets 2 4 --batch 64 --gpu 0 --rounds 3 --round-to 8
step 50 compact_resnet50 $py benchmarks/compact_speedup.py --model resnet50 --targets 2 4 --batch 64 --gpu 0 --rounds 3 --residual --round-to 8
step 45 decompose_vgg16 $py benchmarks/decompose_speedup.py --model vgg16 --ratios 2 3 --batch 64 --gpu 0 --rounds 3
step 60 column_vgg16 $py benchmarks/column_speedup.py --model vgg16 --batch 64 --gpu 0 --fractions 0.5 0.75 --layouts nchw nhwc --rounds 3 --layer-rounds 2
step 45 column_resnet50 $py benchmarks/column_speedup.py --model resnet50 --batch 64 --gpu 0 --fractions 0.75 --layouts nchw nhwc --rounds 3 --layer-rounds 2
# 4. kernel shapes 5x5 vs 5x2 vs 2x5
step 25 kernel_shape $py benchmarks/kernel_shape.py --gpu 0 --batch 256 --rounds 3
# 5. VGG-16 from a JPEG LMDB: data wait < 5% of the iteration at batch 32
step 60 vgg16_jpeg_data_wait $py benchmarks/vgg16_jpeg_data_wait.py --gpu 0 --batch 32 --iterations 40 --display 10 --workers 12
# 6. the NCCL path with one rank (the data-parallel code, backend nccl)
nccl=$(mktemp -d)
step 20 mnist_lmdb $py -m prunekit.cli data mnist --out "$nccl"
sed -e "s#data/mnist/#$nccl/#g" compression_experiments/lenet5/train_val.prototxt >"$nccl/train_val.prototxt"
sed -e "s#^net:.*#net: \"$nccl/train_val.prototxt\"#" -e "s#^snapshot_prefix:.*#snapshot_prefix: \"$nccl/snap\"#" \
    -e "s#^max_iter:.*#max_iter: 200#" compression_experiments/lenet5/baseline_solver.prototxt >"$nccl/solver.prototxt"
step 40 nccl_one_rank $py -m prunekit.cli train --solver "$nccl/solver.prototxt" --gpu 0 --procs 1

echo "=== suite done in $(( $(date +%s) - start ))s" | tee -a "$log"
find benchmarks/results -newer "$stamp_file" -type f | tar czf "$out/gpu_results.tar.gz" -T - 2>>"$log"
tar tzf "$out/gpu_results.tar.gz" | tee -a "$log"
