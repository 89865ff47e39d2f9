"""Models: nn.Modules only (no losses, optimizers, devices, files or distribution)."""

from lmforge.models.registry import MODELS, ModelSpec

__all__ = ["MODELS", "ModelSpec"]
