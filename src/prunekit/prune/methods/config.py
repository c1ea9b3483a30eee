"""The config of the mask-in-rounds zoo (prune/methods/: Mag, L1, FPGM, SFP, GL, GL_Shape, Slim):
the round fields (prune_begin_iter, prune_interval, prune_rounds), sparsity_lambda for the
penalty methods, and acc_borderline only to refuse accuracy-floor mode. The fork's stage fields
mean nothing here (prune/family_fields.py warns about them).
"""

from __future__ import annotations

from prunekit.prune.config import PruneConfig


class ZooConfig(PruneConfig):
    """The fields the method zoo reads (docs/methods/README.md), checked."""

    def validate(self) -> None:
        pm = self.prune_method
        if self.acc_borderline > 0:
            self.fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) is not "
                      f"available with prune_method '{pm}'; set acc_borderline: -1 and give "
                      "prune_ratio per layer")
        if self.prune_rounds < 1:
            self.fail(f"prune_rounds must be >= 1 (got {self.prune_rounds})")
        if self.prune_interval < 1:
            self.fail(f"prune_interval must be >= 1 (got {self.prune_interval}); it is the number "
                      "of iterations between pruning rounds")
        if "sparsity_lambda" in self.fields:
            if self.sparsity_lambda < 0:
                self.fail(f"sparsity_lambda must be >= 0 (got {self.sparsity_lambda})")
            if self.method in ("GL", "Slim") and not self.sparsity_lambda > 0:
                self.fail(f"sparsity_lambda must be > 0 with prune_method '{pm}' (got "
                          f"{self.sparsity_lambda}); it is the sparsity penalty's strength, about "
                          "1e-4")
