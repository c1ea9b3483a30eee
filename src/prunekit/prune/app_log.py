"""The pruning log (stdout) of Caffe_IncReg, line for line (docs/pruning.md "The `[app]` log").

Researchers follow a pruning run with ``grep app``, and report/ parses these lines, so every
function here returns the exact text the fork printed for the given values. Each returns the
text *without* the final newline; a block of several lines is joined by ``\\n``. Lines marked ★
in the fork's log come after a lone ``[app]`` line, which the function includes. Write them with
:func:`emit` (or :class:`AppLog`), which ends every line with a newline and flushes per line.

Number formatting follows C++ iostreams and printf, as the fork used them:
* :func:`cpp_default`: ``operator<<`` with default flags, i.e. ``%g`` with 6 significant
  digits for floating point (0.1226, 1e+07, 1.888e+06, 0.0005), every digit for integers
  (2147483647), 1/0 for bools;
* :func:`cpp_fixed`: ``%f`` (6 decimals) or ``%.Nf``;
* :func:`timestamp`: `` (YYYY/MM/DD-HH:MM)``, with its leading space. Functions take the
  ``datetime`` to print so that callers (and tests) decide the clock.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from prunekit.prune.units import unit_named

#: iter_prune_finished of a layer that has not finished its stage (C++ INT_MAX).
NOT_FINISHED = 2147483647

APP = "[app]"
_IN = "[app]    "  # indented [app] line


# --------------------------------------------------------------------------- number formatting

def cpp_default(x) -> str:
    """``std::cout << x`` with default stream flags (precision 6)."""
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%g" % x


def cpp_fixed(x, decimals: int = 6) -> str:
    """printf ``%.<decimals>f`` (``%f`` when decimals = 6)."""
    x = float(x)
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%.*f" % (decimals, x)


def timestamp(now: datetime) -> str:
    """The fork's time suffix: `` (2019/05/11-14:03)``, leading space included."""
    return f" ({now:%Y/%m/%d-%H:%M})"


def shape_string(shape: Sequence[int]) -> str:
    """Caffe's ``Blob::shape_string()``: ``"20 1 5 5 (500)"``."""
    count = math.prod(int(d) for d in shape)
    return "".join(f"{int(d)} " for d in shape) + f"({count})"


def _star(line: str) -> str:
    return f"{APP}\n{line}"


# --------------------------------------------------------------------------- [app] lines (4.1 table)

def training_starts(iter: int, now: datetime, speedup: float, comp_ratio: float) -> str:
    """Row 1: ``[app] Training starts, iter: 0 (2019/05/11-14:03), speedup: 1, compRatio: 1``."""
    return (f"{APP} Training starts, iter: {int(iter)}{timestamp(now)}, "
            f"speedup: {cpp_default(speedup)}, compRatio: {cpp_default(comp_ratio)}")


def stage_finished(stage: int, speedup: float, iter: int, now: datetime) -> str:
    """Row 2 ★: the current pruning stage reached its ratios; losseval follows."""
    return _star(f"{APP} Current pruning stage (stage = {int(stage)}) finished. Go on training for "
                 f"a little while before checking accuracy. speedup: {cpp_default(speedup)}, "
                 f"iter: {int(iter)}{timestamp(now)}")


def layer_pruned_ratio(index: int, pruned_ratio: float) -> str:
    """Row 3: ``[app]    0 - pruned_ratio: 0.92`` (one per layer with prune_ratio > 0)."""
    return f"{_IN}{int(index)} - pruned_ratio: {cpp_default(pruned_ratio)}"


def left_reg_cleared(index: int, values: Sequence[float]) -> str:
    """Row 4: the unpruned groups whose factor was reset to 0 at stage end, with the old values."""
    listed = " ".join(cpp_default(v) for v in values)
    return (f"{_IN}{int(index)} - {len(values)} columns' left reg not cleared, now cleared: "
            f"{listed}")


def losseval_done(iter: int, now: datetime) -> str:
    """Row 5."""
    return (f"{_IN}'losseval' done, retrain to check accuracy before starting a new pruning "
            f"stage. iter: {int(iter)}{timestamp(now)}")


def retrain_going_on(state: str, acc: float, iter: int, now: datetime) -> str:
    """Row 6: one per retrain test, e.g. ``'retrain' going on, current acc = 0.987400, ...``."""
    return (f"{_IN}'{state}' going on, current acc = {cpp_fixed(acc)}, iter: {int(iter)}"
            f"{timestamp(now)}")


def lr_period_finished(state: str, acc: float, iter: int, new_lr: float, now: datetime) -> str:
    """Row 7: an lr period ended without improvement; the lr decays to ``new_lr``."""
    return (f"{_IN}'{state}' of current lr period finished, final acc = {cpp_fixed(acc)}, "
            f"iter = {int(iter)}, decay lr (new: {cpp_fixed(new_lr, 7)}){timestamp(now)}")


def retrain_done(state: str, best_iter: int, best_acc: float, resume_iter: int) -> str:
    """Row 8: the retrain cycle stops; the best model and the iteration resumed from."""
    return (f"{_IN}All '{state}' done: lr has decayed enough OR max acc of this lr period is not "
            f"better than the previous one. Output the best caffemodel, iter = {int(best_iter)}, "
            f"acc = {cpp_default(best_acc)}. Resuming from iter = {int(resume_iter)}")


def accuracy_bad(iter: int, stage: int) -> str:
    """Row 9: rollback. ``stage`` is the number printed, i.e. the last accepted stage K−1."""
    return (f"{_IN}accuracy **bad**, going to roll back weights to iter = {int(iter)} "
            f"(stage = {int(stage)}). Reassign the incre_pr:")


def accuracy_good() -> str:
    """Row 10."""
    return f"{_IN}accuracy **still good**, save caffemodel, start a new pruning stage."


def incre_pr_line(incre_pr: float, ave_pr: float, target_reg: float) -> str:
    """Row 11: ``[app]    incre_pr: 0.2 (now ave_pr = 0.4, target_reg = 0.1226)``."""
    return (f"{_IN}incre_pr: {cpp_default(incre_pr)} (now ave_pr = {cpp_default(ave_pr)}, "
            f"target_reg = {cpp_default(target_reg)})")


def current_prune_ratio_change(index: int, old: float, new: float) -> str:
    """Row 12: ``[app]    0 - current_prune_ratio: 0.92 -> 0.9 (+-0.02)`` (delta = new − old)."""
    return (f"{_IN}{int(index)} - current_prune_ratio: {cpp_default(old)} -> {cpp_default(new)} "
            f"(+{cpp_default(new - old)})")


def resuming_from(path: str) -> str:
    """Row 13. ``path`` is the snapshot path with or without the ``.solverstate`` suffix."""
    path = str(path)
    if not path.endswith(".solverstate"):
        path += ".solverstate"
    return f"{_IN}===== resuming from: {path}"


def incre_pr_too_small(bottomline: float = 0.01) -> str:
    """Row 14 ★: the next stage increment fell below incre_pr_bottomline."""
    return _star(f"{APP} Stop: incre_pr is too small (<{cpp_default(bottomline)}), so another "
                 "pruning stage is meaningless. Go to 'final_retrain'.")


def all_layers_finished(iter: int, early_stopped: bool) -> str:
    """Row 15 ★: the final target is reached; early stop (IF_eswpf) or go to final_retrain."""
    tail = "early stopped." if early_stopped else "Go to 'final_retrain'."
    return _star(f"{APP} All layer prune finished: iter = {int(iter)} - {tail}")


def state_done(state: str, iter: int, acc: float) -> str:
    """Row 16: ``[app]    All 'final_retrain' done. Output the best caffemodel, ...``."""
    return f"{_IN}All '{state}' done. Output the best caffemodel, iter = {int(iter)}, " \
           f"acc = {cpp_fixed(acc)}"


def all_prune_done(iter: int, acc: float) -> str:
    """Row 17."""
    return f"{_IN}All prune done. Output the best caffemodel, iter = {int(iter)}, " \
           f"acc = {cpp_fixed(acc)}"


@dataclass(frozen=True)
class FinalRatioRow:
    """One layer of the final table (row 18). Counts may be fractional (group-wise column
    counts); they print truncated (%d) while the ratio uses the exact value."""

    name: str
    shape: tuple[int, ...]
    num_col: int
    num_pruned_col: float
    num_row: int
    num_pruned_row: float


def final_pruned_ratios(layers: Iterable[FinalRatioRow]) -> str:
    """Row 18 ★: header, then one line per registered layer in alphabetical order of name."""
    lines = [_star(f"{APP} Print final pruned ratio of all layers:")]
    for r in sorted(layers, key=lambda r: r.name):
        pc = r.num_pruned_col / r.num_col if r.num_col else 0.0
        pr = r.num_pruned_row / r.num_row if r.num_row else 0.0
        lines.append(
            f"{_IN}{r.name}, shape = {shape_string(r.shape)} | num_col = {int(r.num_col)}, "
            f"num_pruned_col = {int(r.num_pruned_col)} ({cpp_fixed(pc)}) | "
            f"num_row = {int(r.num_row)}, num_pruned_row = {int(r.num_pruned_row)} "
            f"({cpp_fixed(pr)})")
    return "\n".join(lines)


def task_done() -> str:
    """Row 19: end of a given-ratio run."""
    return f"{_IN}'Given pr to get acc' task done!"


# --------------------------------------------------------------------------- other stdout lines

def layer_summary(layer: str, if_prune: bool, unit: str, pruned_ratio: float, num_pruned: float,
                  current_prune_ratio: float, iter_prune_finished: int | None, prune_state: str,
                  lr: float, iter_size: int, target_reg: float) -> str:
    """Per-iteration line of one registered layer (printed when prune_log_verbose), e.g.
    ``conv2  IF_prune: 1  pruned_ratio_col: 0.124(62)  current_prune_ratio: 0.9
    iter_prune_finished: 2147483647  (prune-0.0005-1-0.1226)``.

    ``unit`` "Row" prints ``pruned_ratio_row``; ``iter_prune_finished`` None prints INT_MAX.
    ``target_reg`` is the effective one.
    """
    kind = unit_named(unit).log_name
    fin = NOT_FINISHED if iter_prune_finished is None else int(iter_prune_finished)
    return (f"{layer}  IF_prune: {cpp_default(bool(if_prune))}  pruned_ratio_{kind}: "
            f"{cpp_default(pruned_ratio)}({cpp_default(num_pruned)})  current_prune_ratio: "
            f"{cpp_default(current_prune_ratio)}  iter_prune_finished: {fin}  "
            f"({prune_state}-{cpp_default(lr)}-{int(iter_size)}-{cpp_default(target_reg)})")


def step_line(step: int, speedup: float, target_speedup: float, comp_ratio: float,
              target_comp_ratio: float) -> str:
    """``**** Step 1200 (after update): 1.8734/10000 1/10000 ****`` followed by a blank line
    (the returned text ends with ``\\n``, so emit() writes the empty line)."""
    return (f"**** Step {int(step)} (after update): {cpp_default(speedup)}/"
            f"{cpp_default(target_speedup)} {cpp_default(comp_ratio)}/"
            f"{cpp_default(target_comp_ratio)} ****\n")


def totals_line(speedup_count_fc: bool, macs_origin: float, compr_count_conv: bool,
                num_param_origin: float) -> str:
    """Printed once per run: the MAC and parameter totals the ratios are relative to. The fork
    calls the MAC count "GFLOPs" though it is neither giga nor FLOPs; the text is kept."""
    return (f"IF_speedup_count_fc: {cpp_default(bool(speedup_count_fc))}  Total GFLOPs_origin: "
            f"{cpp_default(float(macs_origin))} | IF_compr_count_conv: "
            f"{cpp_default(bool(compr_count_conv))}  Total num_param_origin: "
            f"{cpp_default(float(num_param_origin))}")


def layer_prune_finished(layer: str, step: int, target_speedup: float, target_comp_ratio: float,
                         pruned_ratio: float, pruned_ratio_row: float, pruned_ratio_col: float,
                         current_prune_ratio: float) -> str:
    """A layer reached its current_prune_ratio (docs/pruning.md "The run state machine"). As in the fork, "net speedup"
    and "net compRatio" show the *targets*."""
    return (f"{layer} prune finished!  step: {int(step)}  net speedup: "
            f"{cpp_default(target_speedup)}  net compRatio: {cpp_default(target_comp_ratio)}  "
            f"pruned_ratio: {pruned_ratio:6.4f}  pruned_ratio_row: {pruned_ratio_row:6.4f}  "
            f"pruned_ratio_col: {pruned_ratio_col:6.4f}  current prune_ratio: "
            f"{cpp_default(current_prune_ratio)}")


def reduce_reg(layer: str, group: int, old: float, new: float) -> str:
    """A group's regularisation factor went down: ``reduce reg: conv2-17   old reg: ...``."""
    return (f"reduce reg: {layer}-{int(group)}   old reg: {cpp_default(old)}   "
            f"new reg: {cpp_default(new)}")


def bug_num_to_prune(n: int) -> str:
    """No group left to prune this stage although the layer is not finished (the fork's name)."""
    return f"BUG: num_col_to_prune_ = {int(n)}"


def update_num_pruned_row(layer: str) -> str:
    """Neighbour propagation starts applying queued rows to ``layer`` (docs/pruning.md "Neighbour propagation")."""
    return f"        {layer} in UpdateNumPrunedRow"


def pruned_row(layer: str, row: int) -> str:
    return f" {layer} prune a row successfully: {int(row)}"


def pruned_channel(layer: str, channel: int) -> str:
    """Row unit: ``layer`` zeroed the columns of an input channel whose producer row is pruned."""
    return f"  {layer} prune a channel successfully: {int(channel)}"


def timing_begins() -> str:
    return "--- Solver begins timing"


def after_forward_backward(seconds: float) -> str:
    return f"--- after ForwardBackward: {cpp_default(seconds)}"


def after_apply_update(seconds: float) -> str:
    return f"--- after ApplyUpdate: {cpp_default(seconds)}"


def debug_table_header(layer: str, backward: bool = False) -> str:
    """Header of the periodic weight table (prune_log_verbose); ``backward`` for gradients."""
    what = "DiffBeforeMasked" if backward else "WeightBeforeMasked"
    return f"Index   {what}   Mask   HistoryReg - {layer}"


def debug_table_row(unit: str, index: int, mean_abs: float, mask: float, reg: float) -> str:
    """One table line: ``  c <index>   <mean |w| of the group>   <mask>   <λ>`` (``r`` for
    rows). The fork's documentation gives only the shape of this line, not its exact spacing."""
    kind = unit_named(unit).letter
    return (f"  {kind} {int(index)}   {cpp_default(mean_abs)}   {cpp_default(mask)}   "
            f"{cpp_default(reg)}")


# --------------------------------------------------------------------------- writing

def emit(stream: TextIO, text: str) -> None:
    """Write ``text`` (one or more lines) to ``stream``, each line newline-terminated and
    flushed, so ``tail -f`` and ``grep app`` see it at once."""
    for line in text.split("\n"):
        stream.write(line + "\n")
        stream.flush()


class AppLog:
    """The pruning log of one run: a text stream (the CLI passes sys.stdout) and the
    prune_log_verbose switch that gates the per-iteration layer lines and debug tables."""

    def __init__(self, stream: TextIO, *, verbose: bool = False) -> None:
        self.stream = stream
        self.verbose = verbose

    def write(self, text: str) -> None:
        emit(self.stream, text)

    def write_verbose(self, text: str) -> None:
        """Write only when prune_log_verbose is on."""
        if self.verbose:
            emit(self.stream, text)
