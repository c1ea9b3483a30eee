"""prunekit: run Caffe-format CNN compression experiments on PyTorch."""

__version__ = "0.1.0"
