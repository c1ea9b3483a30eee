"""Pruning inside the solver, grouped by family.

* ``increg/``: IncReg (Reg_Col, Reg_Row, Reg_Shape) and SPP, the Caffe_IncReg fork's methods, with
  their machinery (the per-iteration step and its C/NumPy backends, the stage schedule, stage
  search, snapshot retention, speedup progress);
* ``methods/``: the method zoo that sets masks in rounds (Mag, L1, FPGM, SFP, Slim, GL, GL_Shape);
* beside them what every family shares: ``units`` (Col/Row/Shape/Channel/Weight), ``groups``
  (weight-matrix views), ``layer_state`` (per-layer masks and pruned flags), ``config`` (the
  solver fields per family), ``registry`` (prune_method -> class), ``app_log`` (the ``[app]``
  lines), ``dependency``/``propagation`` (channel coupling between layers).
"""
