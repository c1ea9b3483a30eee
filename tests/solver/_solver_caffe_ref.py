"""Independent numpy re-implementation of Caffe's solver arithmetic, and tiny nets to train.

Nothing here calls prunekit's solver code: the learning rate, clipping, normalisation, weight decay
and the six ``ComputeUpdateValue`` rules are written out from BVLC Caffe's sgd_solver.cpp and
solvers/*.cpp, in float64. Gradients of the tiny nets (InnerProduct → EuclideanLoss or
SoftmaxWithLoss) are closed-form numpy, so the reference does not use autograd either.
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import torch

from prunekit.caffe import parse_net_text, parse_solver_text
from prunekit.net.graph import Net
from prunekit.solver.hooks import SolverHook
from prunekit.solver.solver import Solver

TRAIN, TEST = 0, 1


# ---------------------------------------------------------------------------------------- nets
def param_block(lr_mult=None, decay_mult=None) -> str:
    fields = []
    if lr_mult is not None:
        fields.append(f"lr_mult: {lr_mult}")
    if decay_mult is not None:
        fields.append(f"decay_mult: {decay_mult}")
    return "param { " + " ".join(fields) + " }"


def regression_text(n=4, d=3, o=2, params=("", ""), bias_value=0.1, data="input",
                    loss_weight=None, dropout=False) -> str:
    """data (n×d) → InnerProduct (o outputs) [→ Dropout] → EuclideanLoss against target (n×o)."""
    if data == "input":
        data_layer = (f'layer {{ name: "data" type: "Input" top: "data" top: "target" '
                      f'input_param {{ shape {{ dim: {n} dim: {d} }} shape {{ dim: {n} dim: {o} }} }} }}')
    else:  # DummyData: a fresh gaussian batch every pass, a pure function of (seed, batch)
        data_layer = (f'layer {{ name: "data" type: "DummyData" top: "data" top: "target" '
                      f'dummy_data_param {{ shape {{ dim: {n} dim: {d} }} shape {{ dim: {n} dim: {o} }} '
                      f'data_filler {{ type: "gaussian" std: 1 }} }} }}')
    lw = f" loss_weight: {loss_weight}" if loss_weight is not None else ""
    # Dropout draws its masks from torch's global RNG, which a snapshot must carry
    drop = ('layer { name: "drop" type: "Dropout" bottom: "out" top: "out" '
            'dropout_param { dropout_ratio: 0.3 } }' if dropout else "")
    return f'''
name: "regression"
{data_layer}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "out" {params[0]} {params[1]}
  inner_product_param {{ num_output: {o}
    weight_filler {{ type: "gaussian" std: 0.5 }}
    bias_filler {{ type: "constant" value: {bias_value} }} }} }}
{drop}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss"{lw} }}
'''


CLASSIFY_TEXT = '''
name: "classify"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 6 dim: 4 } shape { dim: 6 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.3 }
                        bias_filler { type: "constant" value: 0 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" loss_weight: 0.5 }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy"
  include { phase: TEST } }
'''


def build_net(text: str, seed: int = 0, phase: int = TRAIN) -> Net:
    torch.manual_seed(seed)  # the fillers draw from torch's global RNG
    return Net(parse_net_text(text), phase)


def regression_data(n=4, d=3, o=2, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)).astype(np.float32),
            rng.standard_normal((n, o)).astype(np.float32))


def feed(net: Net, *arrays: np.ndarray) -> None:
    net.layer("data").set_inputs([torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])


def make_solver(solver_text: str, net: Net, tmp_path, test_nets=(), hooks=None) -> Solver:
    return Solver(parse_solver_text(solver_text), net, list(test_nets),
                  snapshot_prefix=str(tmp_path / "s"), seed=1, hooks=hooks)


def weights_of(net: Net) -> list[np.ndarray]:
    return [b.tensor.detach().numpy().astype(np.float64).copy() for b in net.param_blobs()]


# ------------------------------------------------------------------------- closed-form grads
def euclidean(w, b, x, t, loss_weight=1.0):
    """Loss and [dW, db] of Σ(xWᵀ+b − t)² / 2N."""
    x, t = x.astype(np.float64), t.astype(np.float64)
    n = x.shape[0]
    diff = x @ w.T + b - t
    loss = (diff ** 2).sum() / (2 * n)
    dy = loss_weight * diff / n
    return loss_weight * loss, [dy.T @ x, dy.sum(0)]


def softmax_loss(w, b, x, label, loss_weight=1.0):
    """Loss, [dW, db] and accuracy of SoftmaxWithLoss (VALID normalisation, no ignore_label)."""
    x = x.astype(np.float64)
    n = x.shape[0]
    scores = x @ w.T + b
    shifted = scores - scores.max(1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
    idx = label.astype(int)
    loss = -np.log(prob[np.arange(n), idx]).mean()
    onehot = np.zeros_like(prob)
    onehot[np.arange(n), idx] = 1
    dy = loss_weight * (prob - onehot) / n
    accuracy = float((scores.argmax(1) == idx).mean())
    return loss_weight * loss, [dy.T @ x, dy.sum(0)], accuracy, loss


# -------------------------------------------------------------------------- Caffe's solver
class CaffeRef:
    """caffe::SGDSolver<Dtype>::ApplyUpdate and the ComputeUpdateValue of every solver type."""

    def __init__(self, sp, kind: str, weights, lr_mults, decay_mults):
        self.sp = sp
        self.kind = kind
        self.w = [np.array(w, dtype=np.float64) for w in weights]
        self.lr_mults = list(lr_mults)
        self.decay_mults = list(decay_mults)
        sets = 2 if kind in ("AdaDelta", "Adam") else 1
        self.history = [np.zeros_like(w) for _ in range(sets) for w in self.w]
        self.iter = 0
        self.current_step = 0
        self.rates: list[float] = []
        self.clip_scales: list[float | None] = []

    def learning_rate(self) -> float:  # GetLearningRate
        p, it = self.sp, self.iter
        policy = p.lr_policy
        if policy == "fixed":
            return p.base_lr
        if policy == "step":
            self.current_step = it // p.stepsize
            return p.base_lr * p.gamma ** self.current_step
        if policy == "exp":
            return p.base_lr * p.gamma ** it
        if policy == "inv":
            return p.base_lr * (1 + p.gamma * it) ** (-p.power)
        if policy == "multistep":
            # one step per iteration at most, exactly as Caffe's `if` (not a loop)
            if self.current_step < len(p.stepvalue) and it >= p.stepvalue[self.current_step]:
                self.current_step += 1
            return p.base_lr * p.gamma ** self.current_step
        if policy == "poly":
            return p.base_lr * (1.0 - it / p.max_iter) ** p.power
        if policy == "sigmoid":
            return p.base_lr * (1.0 / (1.0 + math.exp(-p.gamma * (it - p.stepsize))))
        raise AssertionError(policy)

    def apply_update(self, grads) -> None:
        """``grads``: the diffs summed over the iter_size passes (Caffe's accumulated diff)."""
        p = self.sp
        rate = self.learning_rate()
        self.rates.append(rate)
        # A blob with lr_mult 0 gets no backward in Caffe: its diff stays 0.
        diffs = [np.array(g, dtype=np.float64) if lr else np.zeros_like(w)
                 for g, w, lr in zip(grads, self.w, self.lr_mults)]
        scale = None
        if p.clip_gradients >= 0:  # ClipGradients, before Normalize
            norm = math.sqrt(sum(float((d * d).sum()) for d in diffs))
            if norm > p.clip_gradients:
                scale = p.clip_gradients / norm
                diffs = [d * scale for d in diffs]
        self.clip_scales.append(scale)
        n = len(self.w)
        for i, (w, d) in enumerate(zip(self.w, diffs)):
            if p.iter_size > 1:  # Normalize
                d = d / p.iter_size
            decay = p.weight_decay * self.decay_mults[i]  # Regularize
            if decay:
                if p.regularization_type == "L2":
                    d = d + decay * w
                elif p.regularization_type == "L1":
                    d = d + decay * np.sign(w)
                else:
                    raise AssertionError(p.regularization_type)
            update = self._update_value(i, n, d, rate * self.lr_mults[i])
            self.w[i] = w - update  # Net::Update
        self.iter += 1

    def _update_value(self, i, n, g, lr):
        p, h = self.sp, self.history
        if self.kind == "SGD":
            h[i] = p.momentum * h[i] + lr * g
            return h[i].copy()
        if self.kind == "Nesterov":
            old = h[i].copy()
            h[i] = p.momentum * h[i] + lr * g
            return (1 + p.momentum) * h[i] - p.momentum * old
        if self.kind == "AdaGrad":
            h[i] = h[i] + g * g
            return lr * g / (np.sqrt(h[i]) + p.delta)
        if self.kind == "RMSProp":
            h[i] = p.rms_decay * h[i] + (1 - p.rms_decay) * g * g
            return lr * g / (np.sqrt(h[i]) + p.delta)
        if self.kind == "AdaDelta":
            h[i] = p.momentum * h[i] + (1 - p.momentum) * g * g
            step = g * np.sqrt((h[n + i] + p.delta) / (h[i] + p.delta))
            h[n + i] = p.momentum * h[n + i] + (1 - p.momentum) * step * step
            return lr * step
        if self.kind == "Adam":
            b1, b2 = p.momentum, p.momentum2
            h[i] = b1 * h[i] + (1 - b1) * g
            h[n + i] = b2 * h[n + i] + (1 - b2) * g * g
            t = self.iter + 1
            correction = math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            return lr * correction * h[i] / (np.sqrt(h[n + i]) + p.delta)
        raise AssertionError(self.kind)


def run_regression_ref(sp, kind, w0, x, t, iterations, lr_mults=(1, 1), decay_mults=(1, 1)):
    """Reference training of the regression net on fixed data; returns (ref, losses)."""
    ref = CaffeRef(sp, kind, w0, lr_mults, decay_mults)
    losses = []
    for _ in range(iterations):
        loss, grads = euclidean(ref.w[0], ref.w[1], x, t)
        losses.append(loss)
        ref.apply_update(grads)
    return ref, losses


def assert_weights_close(net: Net, expected, rtol=2e-5, atol=1e-6) -> None:
    for got, want in zip(weights_of(net), expected):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------ observing
class Recorder(SolverHook):
    """Records the learning rate and multistep counter of every update."""

    name = "recorder"

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.steps: list[int] = []

    def after_update(self, solver) -> None:
        self.rates.append(solver.rate)
        self.steps.append(solver.current_step)


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def matching(self, pattern: str) -> list[re.Match]:
        rx = re.compile(pattern)
        return [m for m in (rx.fullmatch(line) for line in self.lines) if m]


def as_caffe_solverstate(state_path: str, out_path: str) -> str:
    """Copy of a prunekit solverstate without the prunekit_state extension: what Caffe writes."""
    from prunekit import caffe

    state = caffe.read_solverstate(state_path)
    assert state.HasField("prunekit_state")
    state.ClearField("prunekit_state")
    caffe.write_solverstate(out_path, state)
    return out_path
