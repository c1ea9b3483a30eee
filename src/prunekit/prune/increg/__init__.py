"""IncReg and SPP: group regularisation / keep probabilities raised every iteration inside the
solver, run by the fork's stage schedule (prune -> losseval -> retrain -> stage check)."""
