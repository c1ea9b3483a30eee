"""Data sources for Caffe nets: LMDB ``Data``, ``ImageData`` list files, ``DummyData``, ``Input``.

Every source is a :class:`~prunekit.net.layers.base.CaffeLayer` with ``is_data = True``; the Net
calls ``next_batch()`` instead of ``forward``. Randomness (crops, mirrors, shuffles, fillers) is a
pure function of ``(seed, batch index)``, so prefetching and resuming never change the batches.
Record readers are looked up by backend name in :mod:`prunekit.data.backends`.
"""
