"""Compute layers, one Caffe layer type (or a family of trivial ones) per file."""
