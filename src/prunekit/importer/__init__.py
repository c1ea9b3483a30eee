"""``prunekit import``: bring an ONNX model (or a torchvision architecture, through ONNX) in as a
Caffe deploy prototxt + caffemodel that every prunekit command runs.

The steps, one module each: :mod:`.onnx_graph` loads the file, fixes the input shape, infers every
tensor's shape (``onnx.shape_inference``) and folds constant subgraphs (evaluated by
``onnx.reference``); :mod:`.patterns` rewrites multi-node idioms (SiLU as Mul(x, Sigmoid(x)),
ShuffleNet's Reshape/Transpose/Reshape, a chunk's Slices) into single pseudo-ops;
:mod:`.ops` maps each node to Caffe layers (one file per op family) through :mod:`.builder`;
:mod:`.verify` builds the prunekit net and checks every blob shape against ONNX's (and the outputs
against onnxruntime's when it is installed). An op that cannot be mapped stops the import with a
message naming the node, its op type and the supported list: never a silently different net.
"""

from prunekit.importer.convert import ImportedNet, import_onnx

__all__ = ["ImportedNet", "import_onnx"]
