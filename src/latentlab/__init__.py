"""latentlab: representation learning and generative models, runnable, measurable and visible."""

__version__ = "0.1.0"
