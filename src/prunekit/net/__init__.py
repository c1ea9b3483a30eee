"""Build torch modules from Caffe NetParameter messages (one submodule per Caffe layer)."""
