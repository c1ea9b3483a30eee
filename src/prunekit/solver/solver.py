"""The training loop with Caffe's semantics (``Solver::Solve`` / ``Step`` / ``ApplyUpdate``).

Order per iteration, as in Caffe: periodic test → ``iter_size`` forward/backward passes summing
gradients → display → lr → gradient clipping → per parameter: normalise by ``iter_size``, weight
decay, update rule → weights move → iter += 1 → periodic snapshot. Pruning methods plug in as
:class:`~prunekit.solver.hooks.SolverHook` objects. In data-parallel training (``dist``, see
:mod:`prunekit.solver.distributed`) the gradients are summed over the ranks right after the
forward/backward passes and normalised by ``iter_size × ranks`` (one process with that
iter_size), rank 0 alone tests and snapshots, and the others receive its results.
"""

from __future__ import annotations

import math
import time

import torch

from prunekit.log import get_logger
from prunekit.net.graph import Net
from prunekit.solver.data_wait import DataWaitMeter
from prunekit.solver.distributed import Dist
from prunekit.solver.evaluate import evaluate, format_score, net_loss_weights, score_text
from prunekit.solver.hooks import SolverHook, TrainingControl
from prunekit.solver.lr_policy import learning_rate
from prunekit.solver.regularize import add_weight_decay, clip_gradients
from prunekit.solver.smoothed_loss import SmoothedLoss
from prunekit.solver.update_rules import make_rule


def _control_field(name: str) -> property:
    """``solver.<name>`` reads and writes ``solver.control.<name>`` (the snapshot and the loop
    below keep their names; hooks go through ``solver.control``)."""
    return property(lambda self: getattr(self.control, name),
                    lambda self, value: setattr(self.control, name, value))


class Solver:
    """Trains ``net`` with the settings of a SolverParameter; ``test_nets`` share its weights."""

    lr_override = _control_field("lr_override")
    extra_iter_size = _control_field("extra_iter_size")
    finished = _control_field("finished")

    def __init__(self, param, net: Net, test_nets: list[Net], *, snapshot_prefix: str,
                 seed: int, hooks: list[SolverHook] | None = None,
                 dist: Dist | None = None) -> None:
        self.param = param
        self.dist = dist or Dist()
        self.net = net
        self.test_nets = test_nets
        self.snapshot_prefix = snapshot_prefix
        self.seed = seed
        self.hooks = list(hooks or [])
        self.log = get_logger()
        self.iter = 0
        self.current_step = 0
        self.iter_size = max(1, param.iter_size)
        self.control = TrainingControl()  # what hooks change: lr override, extra passes, finished
        self.rate = param.base_lr
        self.blobs = net.param_blobs()
        self.rule = make_rule(param)
        self.history = [torch.zeros_like(b.tensor) for _ in range(self.rule.history_sets)
                        for b in self.blobs]
        self.smoothed = SmoothedLoss(param.average_loss, 0)
        self.stop_requested = False
        # Ctrl-C seen by this process; with several ranks it stops the run only once all ranks
        # agree (in the gradient all-reduce), so that every rank leaves after the same iteration.
        self.interrupted = False
        self.signals = None  # solver/signals.py SignalActions: acted on between iterations
        self.snapshot_on_stop = False  # a stop by signal that snapshots whatever the solver says
        self.debug = None  # solver/debug_info.py DebugInfo when the solver sets debug_info
        self._diverged = False
        self.last_outputs: dict[str, torch.Tensor] = {}
        self.data_wait = DataWaitMeter(net.data_layers())

    # ------------------------------------------------------------------ top level
    def solve(self) -> None:
        """Caffe's Solve: train to ``max_iter``, final snapshot, final display and test."""
        self.log.info("Solving %s", self.net.net_name)
        self.log.info("Learning Rate Policy: %s", self.param.lr_policy or "fixed")
        for hook in self.hooks:
            hook.on_start(self)
        self.step(self.param.max_iter - self.iter)
        if self.finished:
            return
        final = self.param.snapshot_after_train or (self.stop_requested and self.snapshot_on_stop)
        if final and (not self.param.snapshot or self.iter % self.param.snapshot != 0):
            self.snapshot()
        if self.stop_requested:
            self.log.info("Optimization stopped early.")
            return
        if self.param.display and self.iter % self.param.display == 0:
            with torch.no_grad():
                loss, _ = self.net()
            value = self.smoothed.update(float(loss), self.iter)
            self.log.info("Iteration %d, loss = %s", self.iter, format_score(value))
        if self.param.test_interval and self.iter % self.param.test_interval == 0:
            self.test_all()
        self.log.info("Optimization Done.")

    def step(self, iterations: int) -> None:
        """Run ``iterations`` training iterations (fewer if a stop is requested)."""
        stop_iter = self.iter + iterations
        if not self.smoothed.losses:  # an empty window starts here (fresh or Caffe-state resume)
            self.smoothed.start_iter = self.iter
        self.data_wait.restart()
        while self.iter < stop_iter and not (self.stop_requested or self.finished):
            self._one_iteration()
            if any(hook.should_stop(self) for hook in self.hooks):
                self.stop_requested = True
            if self.signals is not None:
                self.signals.apply(self)

    def _one_iteration(self) -> None:
        p = self.param
        if p.test_interval and self.iter % p.test_interval == 0 and (
            self.iter > 0 or p.test_initialization
        ):
            began = time.perf_counter()
            self.test_all()
            self.data_wait.exclude(time.perf_counter() - began)
        self.data_wait.count_iteration()
        for hook in self.hooks:
            hook.before_forward(self)
        loss = self._forward_backward()
        for hook in self.hooks:
            hook.after_backward(self)
        if not math.isfinite(loss) and not self._diverged:
            self._diverged = True
            self.log.warning("Iteration %d: loss is %s; training has diverged (try a smaller "
                             "base_lr or clip_gradients)", self.iter, loss)
        smoothed = self.smoothed.update(loss, self.iter)
        if p.display and self.iter % p.display == 0:
            self.log.info("Iteration %d, loss = %s", self.iter, format_score(smoothed))
            self._log_outputs("Train", self.net, self.last_outputs)
        self.apply_update()
        if p.display and self.iter % p.display == 0:  # after Caffe's own lines, which users parse
            self.log.info(self.data_wait.line(self.iter))
        if self.finished:  # like the fork's exit(0): no increment, no periodic snapshot
            return
        self.iter += 1
        if p.snapshot and self.iter % p.snapshot == 0:
            self.snapshot()

    def _forward_backward(self) -> float:
        for ref in self.blobs:
            ref.tensor.grad = None
        passes = self.iter_size * self.extra_iter_size
        total = 0.0
        debug = self.debug if self.debug is not None and self.debug.wanted(self) else None
        for _ in range(passes):
            loss, outputs = debug.forward(self.net) if debug else self.net()
            if loss.requires_grad:
                loss.backward()
            if debug:
                debug.backward(self.blobs)
            total += float(loss.detach())
            self.last_outputs = {k: v.detach() for k, v in outputs.items()}
        mean, agreed = self.dist.sum_gradients(
            [b.tensor for b in self.blobs if b.learnable], total / passes, self.interrupted)
        if agreed:
            self.stop_requested = True
        return mean

    # ------------------------------------------------------------------ update
    def apply_update(self) -> None:
        """Caffe's SGDSolver::ApplyUpdate with the hook between regularisation and update."""
        p = self.param
        rate, self.current_step = learning_rate(p, self.iter, self.current_step)
        if self.lr_override is not None:
            rate = self.lr_override
        self.rate = rate
        if p.display and self.iter % p.display == 0:
            self.log.info("Iteration %d, lr = %s", self.iter, format_score(rate))
        learnable = [b for b in self.blobs if b.learnable and b.tensor.grad is not None]
        if p.clip_gradients >= 0:  # Caffe: only a negative value (default -1) turns it off
            clip_gradients([b.tensor for b in learnable], p.clip_gradients, self.log)
        normaliser = self.iter_size * self.dist.world_size  # passes summed into each gradient
        with torch.no_grad():
            for ref in learnable:
                if normaliser > 1:
                    ref.tensor.grad.div_(normaliser)
                add_weight_decay(ref, p.weight_decay, p.regularization_type)
            for hook in self.hooks:
                hook.before_update(self)
            n = len(self.blobs)
            for i, ref in enumerate(self.blobs):
                if not (ref.learnable and ref.tensor.grad is not None):
                    continue
                hist = [self.history[i + k * n] for k in range(self.rule.history_sets)]
                step = self.rule.update(ref.tensor.grad, hist, rate * ref.lr_mult, self.iter)
                if self.debug is not None and self.debug.wanted(self):
                    self.debug.update(ref, step, self.net)
                ref.tensor.sub_(step)
        for hook in self.hooks:
            hook.after_update(self)

    # ------------------------------------------------------------------ testing
    def test_all(self) -> list[list[tuple[str, float, float]]]:
        """Run every test net for its ``test_iter`` and log Caffe's "Test net output" lines."""
        results = []
        for index, test_net in enumerate(self.test_nets):
            self.log.info("Iteration %d, Testing net (#%d)", self.iter, index)
            iterations = self.param.test_iter[index] if index < len(self.param.test_iter) else 0
            scores, mean_loss = evaluate(test_net, iterations) if self.dist.is_writer else (None, 0.0)
            scores, mean_loss = self.dist.broadcast_object((scores, mean_loss))
            if self.param.test_compute_loss:
                self.log.info("Test loss: %s", format_score(mean_loss))
            for k, (name, value, weight) in enumerate(scores):
                self.log.info("    Test net output #%d: %s", k, score_text(name, value, weight))
            for hook in self.hooks:
                hook.on_test(self, scores)
            results.append(scores)
        return results

    def _log_outputs(self, label: str, net: Net, outputs) -> None:
        k = 0
        weights = net_loss_weights(net)
        for name in net.output_names:
            for value in outputs[name].reshape(-1).tolist():
                text = score_text(name, value, weights.get(name, 0.0))
                self.log.info("    %s net output #%d: %s", label, k, text)
                k += 1

    # ------------------------------------------------------------------ snapshots
    def snapshot(self, tag: str = "") -> tuple[str, str]:
        """Write ``<prefix><tag>_iter_<N>.caffemodel`` and ``.solverstate`` (atomically)."""
        from prunekit.solver.snapshot import snapshot_paths, write_snapshot

        if self.dist.is_writer:
            paths = write_snapshot(self, tag)
        else:
            paths = snapshot_paths(self.snapshot_prefix + tag, self.iter)
        self.dist.barrier("a snapshot")  # rank 0's files are complete before anyone reads them
        for hook in self.hooks:
            hook.on_snapshot(self, tag, paths)
        return paths

    def restore(self, path: str, rollback: bool = False) -> None:
        """Continue from a ``.solverstate`` (and the caffemodel it names); see restore_snapshot."""
        from prunekit.solver.snapshot import restore_snapshot

        restore_snapshot(self, path, rollback)
        self.dist.barrier("a snapshot read")  # no rank deletes it before every rank has read it

