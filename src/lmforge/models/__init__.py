"""Models: nn.Modules only (no losses, optimizers, devices, files or distribution)."""

from lmforge.models.registry import ALL_MODELS, MODELS, TASK_MODELS, ModelSpec

__all__ = ["ALL_MODELS", "MODELS", "TASK_MODELS", "ModelSpec"]
