"""The one training engine: the method contract, the Fabric loop and its cadence, checkpoints, logging, run
directories. It imports no concrete method: ``train`` and ``open_run`` take the method class."""

from .loop import TrainResult, TrainingInterrupted, make_fabric, seed_all, train, write_eval
from .method import METHODS, Method, linear_decay, register_method
from .run import open_run, run_config, run_method_name

__all__ = ["TrainResult", "TrainingInterrupted", "make_fabric", "seed_all", "train", "write_eval", "METHODS",
           "Method", "linear_decay", "register_method", "open_run", "run_config", "run_method_name"]
