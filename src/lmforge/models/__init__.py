"""Models: nn.Modules only (no losses, optimizers, devices, files or distribution)."""

from lmforge.models.gpt import GPT, PRESETS, GPTConfig

# family name -> (config class, model class, presets)
MODELS = {"gpt": (GPTConfig, GPT, PRESETS)}
