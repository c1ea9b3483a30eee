"""``decompose``: low-rank acceleration of conv and InnerProduct layers (accnn's successor).

* spatial.py — Tai et al.'s conv split (C, d_h, d_w) → (K, d_h, 1) + (N, 1, d_w), per group;
* fc.py — truncated SVD of an InnerProduct into two;
* candidates.py — which layers can be split and the MACs of each rank, from the built net;
* energies.py — E(r) per layer, from the weights (accnn) or from responses on data (Zhang);
* rank_selection.py — ranks for a target speedup (exact knapsack or greedy heap);
* config.py — the rank JSON; rewrite.py — the new prototxt and blobs;
* plan.py — checks user-given ranks against the net; report.py — the printed table.
"""
