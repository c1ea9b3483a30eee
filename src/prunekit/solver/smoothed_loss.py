"""Caffe's ``average_loss`` window: the loss shown on display lines is a running mean.

Kept as its own object so a resumed run restores the window and prints the same numbers as an
uninterrupted one (Caffe itself restarts the window on resume).
"""

from __future__ import annotations


class SmoothedLoss:
    def __init__(self, window: int, start_iter: int) -> None:
        self.window = max(1, window)
        self.start_iter = start_iter
        self.losses: list[float] = []
        self.value = 0.0

    def update(self, loss: float, iteration: int) -> float:
        """Add this iteration's loss (Caffe's UpdateSmoothedLoss) and return the smoothed value."""
        if len(self.losses) < self.window:
            self.losses.append(loss)
            self.value = (self.value * (len(self.losses) - 1) + loss) / len(self.losses)
        else:
            index = (iteration - self.start_iter) % self.window
            self.value += (loss - self.losses[index]) / self.window
            self.losses[index] = loss
        return self.value

    def state_dict(self) -> dict:
        return {"start_iter": self.start_iter, "losses": list(self.losses), "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.start_iter = int(state["start_iter"])
        self.losses = [float(x) for x in state["losses"]]
        self.value = float(state["value"])
