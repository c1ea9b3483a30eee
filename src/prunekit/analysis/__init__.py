"""Which layers to prune how much: per-layer sensitivity curves, the ratio planner (an exact
knapsack over the curves, by MACs or by measured latency) and the per-layer latency model."""
