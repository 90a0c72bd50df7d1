"""The one training engine: Fabric loop, checkpoints, logging, run directories."""

from .loop import TrainResult, TrainingInterrupted, make_fabric, seed_all, train, write_eval
from .run import load_run, load_run_config

__all__ = ["TrainResult", "TrainingInterrupted", "make_fabric", "seed_all", "train", "write_eval",
           "load_run", "load_run_config"]
