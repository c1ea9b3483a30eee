"""The pruning log reproduces Caffe_IncReg's stdout lines (reference 4.1) character for character."""

from __future__ import annotations

import io
import math
from datetime import datetime

import numpy as np
import pytest

from prunekit.prune import app_log as A

T0 = datetime(2019, 5, 11, 14, 3)
T_STAGE = datetime(2019, 5, 11, 14, 10)
T_RETRAIN = datetime(2019, 5, 11, 14, 17)


@pytest.mark.parametrize("value, text", [
    (0.1226, "0.1226"), (1e7, "1e+07"), (1888000.0, "1.888e+06"), (0.0005, "0.0005"),
    (2147483647, "2147483647"), (405000, "405000"), (405000.0, "405000"),
    (123633664, "123633664"), (123633664.0, "1.23634e+08"), (1.0, "1"), (10000.0, "10000"),
    (4.8123456, "4.81235"), (1e-5, "1e-05"), (0.0001, "0.0001"), (-0.020000000000000018, "-0.02"),
    (True, "1"), (False, "0"), (np.float32(0.1226), "0.1226"), (np.int64(62), "62"),
    (math.inf, "inf"), (math.nan, "nan"), (-0.0, "-0"),
])
def test_cpp_default(value, text):
    assert A.cpp_default(value) == text


def test_cpp_fixed_timestamp_shape():
    assert A.cpp_fixed(0.9874) == "0.987400"
    assert A.cpp_fixed(5e-5, 7) == "0.0000500"
    assert A.timestamp(T0) == " (2019/05/11-14:03)"
    assert A.timestamp(datetime(2020, 1, 2, 3, 4)) == " (2020/01/02-03:04)"
    assert A.shape_string((20, 1, 5, 5)) == "20 1 5 5 (500)"
    assert A.shape_string((500, 800)) == "500 800 (400000)"
    assert A.shape_string(()) == "(1)"


# ----------------------------------------------------------------------------- [app] table rows

def test_rows_with_reference_examples():
    assert A.training_starts(0, T0, 1.0, 1.0) == \
        "[app] Training starts, iter: 0 (2019/05/11-14:03), speedup: 1, compRatio: 1"
    assert A.stage_finished(1, 4.812, 1530, T_STAGE) == (
        "[app]\n[app] Current pruning stage (stage = 1) finished. Go on training for a little "
        "while before checking accuracy. speedup: 4.812, iter: 1530 (2019/05/11-14:10)")
    assert A.layer_pruned_ratio(0, 0.92) == "[app]    0 - pruned_ratio: 0.92"
    assert A.retrain_going_on("retrain", 0.9874, 3000, T_RETRAIN) == \
        "[app]    'retrain' going on, current acc = 0.987400, iter: 3000 (2019/05/11-14:17)"
    assert A.lr_period_finished("retrain", 0.9901, 6500, 0.0005 * 0.1,
                                datetime(2019, 5, 11, 14, 30)) == (
        "[app]    'retrain' of current lr period finished, final acc = 0.990100, iter = 6500, "
        "decay lr (new: 0.0000500) (2019/05/11-14:30)")
    assert A.incre_pr_line(0.2, 0.4, 0.1226) == \
        "[app]    incre_pr: 0.2 (now ave_pr = 0.4, target_reg = 0.1226)"
    assert A.current_prune_ratio_change(0, 0.92, 0.9) == \
        "[app]    0 - current_prune_ratio: 0.92 -> 0.9 (+-0.02)"
    assert A.current_prune_ratio_change(3, 0.3, 0.5) == \
        "[app]    3 - current_prune_ratio: 0.3 -> 0.5 (+0.2)"


def test_left_reg_cleared():
    values = [0.0421, 0.0013] + [0.001] * 10
    assert A.left_reg_cleared(1, values) == (
        "[app]    1 - 12 columns' left reg not cleared, now cleared: 0.0421 0.0013"
        + " 0.001" * 10)
    assert A.left_reg_cleared(0, []) == "[app]    0 - 0 columns' left reg not cleared, now cleared: "


def test_rows_from_formats():
    assert A.losseval_done(2530, T0) == (
        "[app]    'losseval' done, retrain to check accuracy before starting a new pruning "
        "stage. iter: 2530 (2019/05/11-14:03)")
    assert A.retrain_done("retrain", 6000, 0.9912, 4500) == (
        "[app]    All 'retrain' done: lr has decayed enough OR max acc of this lr period is not "
        "better than the previous one. Output the best caffemodel, iter = 6000, acc = 0.9912. "
        "Resuming from iter = 4500")
    assert A.accuracy_bad(1530, 0) == ("[app]    accuracy **bad**, going to roll back weights "
                                       "to iter = 1530 (stage = 0). Reassign the incre_pr:")
    assert A.accuracy_good() == \
        "[app]    accuracy **still good**, save caffemodel, start a new pruning stage."
    assert A.resuming_from("w/_stage1-retrain_iter_6000") == \
        "[app]    ===== resuming from: w/_stage1-retrain_iter_6000.solverstate"
    assert A.resuming_from("w/_stage1_iter_5.solverstate") == \
        "[app]    ===== resuming from: w/_stage1_iter_5.solverstate"
    assert A.incre_pr_too_small() == (
        "[app]\n[app] Stop: incre_pr is too small (<0.01), so another pruning stage is "
        "meaningless. Go to 'final_retrain'.")
    assert A.all_layers_finished(7000, True) == \
        "[app]\n[app] All layer prune finished: iter = 7000 - early stopped."
    assert A.all_layers_finished(7000, False) == \
        "[app]\n[app] All layer prune finished: iter = 7000 - Go to 'final_retrain'."
    assert A.state_done("final_retrain", 9000, 0.99) == \
        "[app]    All 'final_retrain' done. Output the best caffemodel, iter = 9000, acc = 0.990000"
    assert A.all_prune_done(9000, 0.9905) == \
        "[app]    All prune done. Output the best caffemodel, iter = 9000, acc = 0.990500"
    assert A.task_done() == "[app]    'Given pr to get acc' task done!"


def test_final_table_alphabetical():
    rows = [
        A.FinalRatioRow("ip1", (500, 800), 800, 0, 500, 0),
        A.FinalRatioRow("conv2", (50, 20, 5, 5), 500, 450, 50, 0),
        A.FinalRatioRow("conv1", (20, 1, 5, 5), 25, 23, 20, 3),
    ]
    assert A.final_pruned_ratios(rows).split("\n") == [
        "[app]",
        "[app] Print final pruned ratio of all layers:",
        "[app]    conv1, shape = 20 1 5 5 (500) | num_col = 25, num_pruned_col = 23 (0.920000) "
        "| num_row = 20, num_pruned_row = 3 (0.150000)",
        "[app]    conv2, shape = 50 20 5 5 (25000) | num_col = 500, num_pruned_col = 450 "
        "(0.900000) | num_row = 50, num_pruned_row = 0 (0.000000)",
        "[app]    ip1, shape = 500 800 (400000) | num_col = 800, num_pruned_col = 0 (0.000000) "
        "| num_row = 500, num_pruned_row = 0 (0.000000)",
    ]
    # fractional group counts print truncated, the ratio keeps the fraction
    frac = A.final_pruned_ratios([A.FinalRatioRow("g", (4, 2, 1, 1), 2, 1.5, 4, 0)])
    assert "num_pruned_col = 1 (0.750000)" in frac


# ----------------------------------------------------------------------------- other lines

def test_other_stdout_lines():
    assert A.layer_summary("conv2", True, "Col", 0.124, 62.0, 0.9, None, "prune", 0.0005, 1,
                           0.1226) == (
        "conv2  IF_prune: 1  pruned_ratio_col: 0.124(62)  current_prune_ratio: 0.9  "
        "iter_prune_finished: 2147483647  (prune-0.0005-1-0.1226)")
    assert A.layer_summary("ip1", False, "Row", 0.0, 0, 0.0, 1529, "retrain", 5e-5, 8, 6.13) == (
        "ip1  IF_prune: 0  pruned_ratio_row: 0(0)  current_prune_ratio: 0  "
        "iter_prune_finished: 1529  (retrain-5e-05-8-6.13)")
    assert A.step_line(1200, 1.8734, 10000.0, 1.0, 10000.0) == \
        "**** Step 1200 (after update): 1.8734/10000 1/10000 ****\n"
    assert A.totals_line(False, 1888000, False, 405000) == (
        "IF_speedup_count_fc: 0  Total GFLOPs_origin: 1.888e+06 | IF_compr_count_conv: 0  "
        "Total num_param_origin: 405000")
    assert A.layer_prune_finished("conv1", 1530, 10000.0, 10000.0, 0.932, 0.15, 0.92, 0.9) == (
        "conv1 prune finished!  step: 1530  net speedup: 10000  net compRatio: 10000  "
        "pruned_ratio: 0.9320  pruned_ratio_row: 0.1500  pruned_ratio_col: 0.9200  "
        "current prune_ratio: 0.9")
    assert A.reduce_reg("conv2", 17, 0.05, 0.0421) == \
        "reduce reg: conv2-17   old reg: 0.05   new reg: 0.0421"
    assert A.bug_num_to_prune(-3) == "BUG: num_col_to_prune_ = -3"
    assert A.update_num_pruned_row("conv1") == "        conv1 in UpdateNumPrunedRow"
    assert A.pruned_row("conv1", 7) == " conv1 prune a row successfully: 7"
    assert A.pruned_channel("conv2", 4) == "  conv2 prune a channel successfully: 4"
    assert A.timing_begins() == "--- Solver begins timing"
    assert A.after_forward_backward(0.25) == "--- after ForwardBackward: 0.25"
    assert A.after_apply_update(0.001) == "--- after ApplyUpdate: 0.001"
    assert A.debug_table_header("conv2") == \
        "Index   WeightBeforeMasked   Mask   HistoryReg - conv2"
    assert A.debug_table_header("conv2", backward=True) == \
        "Index   DiffBeforeMasked   Mask   HistoryReg - conv2"
    assert A.debug_table_row("Col", 1, 0.0123, 1, 0.05) == "  c 1   0.0123   1   0.05"


# ----------------------------------------------------------------------------- writing

class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[str] = []

    def flush(self) -> None:
        self.flushes.append(self.getvalue())
        super().flush()


def test_emit_flushes_every_line_and_step_blank_line():
    out = CountingStream()
    A.emit(out, A.all_layers_finished(5, True))
    A.emit(out, A.step_line(1, 1.0, 2.0, 1.0, 10000.0))
    assert out.getvalue() == (
        "[app]\n[app] All layer prune finished: iter = 5 - early stopped.\n"
        "**** Step 1 (after update): 1/2 1/10000 ****\n\n")
    assert len(out.flushes) == 4 and out.flushes[0] == "[app]\n"


def test_applog_verbose_gate():
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, verbose in ((quiet, False), (loud, True)):
        log = A.AppLog(stream, verbose=verbose)
        log.write_verbose("conv1  IF_prune: 1")
        log.write(A.task_done())
    assert quiet.getvalue() == "[app]    'Given pr to get acc' task done!\n"
    assert loud.getvalue() == "conv1  IF_prune: 1\n[app]    'Given pr to get acc' task done!\n"
