#!/bin/sh
# Regenerate caffe_pb2.py from caffe.proto. Run from anywhere; needs grpcio-tools.
#
# The committed caffe_pb2.py was made with grpcio-tools 1.73.1, whose gencode asks for a
# protobuf runtime >= 6.31.0 (the floor in pyproject.toml). A newer grpcio-tools raises
# that floor to its own protobuf version, so use 1.73.x unless the floor moves too:
#   python -m venv /tmp/gen && /tmp/gen/bin/pip install grpcio-tools==1.73.1
#   PYTHON=/tmp/gen/bin/python src/prunekit/caffe/regenerate.sh
set -e
cd "$(dirname "$0")/../../.."
"${PYTHON:-python}" -m grpc_tools.protoc -I src/prunekit/caffe --python_out=src/prunekit/caffe \
    src/prunekit/caffe/caffe.proto
