"""A model's layers as they run: name, type, output shape and parameters of every module, collected
with forward hooks on one example batch (torchinfo-style, for any family)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    params: int
    """Parameters of this module and its children; a shared weight counts once, where it first appears."""
    depth: int


def _first_tensor(output) -> Tensor | None:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((t for t in map(_first_tensor, output) if t is not None), None)
    return None


def _depth(name: str) -> int:
    """Nesting level, not counting list indices: blocks.0 is top level, blocks.0.attn one below."""
    return sum(not part.isdigit() for part in name.split(".")) - 1


def example_inputs(model: nn.Module, length: int) -> tuple[Tensor, ...]:
    """A batch of one all-zero sequence of `length` tokens, as the model's forward takes it: (tokens,), or
    (source, source mask, target) for an encoder-decoder."""
    tokens = torch.zeros((1, length), dtype=torch.long)
    if hasattr(model, "encode"):
        return tokens, torch.ones((1, length), dtype=torch.bool), tokens
    return (tokens,)


@torch.no_grad()
def layer_rows(model: nn.Module, tokens: Tensor | tuple[Tensor, ...]) -> list[LayerRow]:
    """Rows in the order the modules first ran on `tokens` (B, T) (or on a tuple of forward inputs)."""
    names = {module: name for name, module in model.named_modules() if name}
    counted: set[int] = set()
    owned = {}
    for module in names:
        params = [p for p in module.parameters(recurse=False) if id(p) not in counted]
        counted.update(id(p) for p in params)
        owned[module] = sum(p.numel() for p in params)
    rows: list[LayerRow] = []
    seen: set[nn.Module] = set()

    def record(module, inputs, output):
        if module in seen:
            return
        seen.add(module)
        tensor = _first_tensor(output)
        subtree = sum(owned[m] for m in module.modules() if m in owned)
        rows.append(LayerRow(names[module], type(module).__name__, tuple(tensor.shape) if tensor is not None else None,
                             subtree, _depth(names[module])))

    started: dict[str, int] = {}

    def start(module, inputs):
        started.setdefault(names[module], len(started))

    handles = [module.register_forward_pre_hook(start) for module in names]
    handles += [module.register_forward_hook(record) for module in names]
    was_training = model.training
    model.eval()
    try:
        model(*(tokens if isinstance(tokens, tuple) else (tokens,)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    # forward hooks fire when a module finishes (children before parents): order by first start instead
    rows.sort(key=lambda row: started[row.name])
    return rows
