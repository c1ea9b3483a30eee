"""Caffe's solvers on PyTorch: update rules, lr policies, snapshots, the training loop."""
