"""Training: the rate-distortion loss, the patch sampler, the resumable loop, and the ``model``
stage that trains (or fetches) one model at one rate point."""

from benchmark.training.loop import (
    PatchSampler,
    TrainConfig,
    TrainingError,
    rd_loss,
    train,
)

__all__ = ["PatchSampler", "TrainConfig", "TrainingError", "rd_loss", "train"]
