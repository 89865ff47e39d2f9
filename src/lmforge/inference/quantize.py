"""int8 weights for CPU decoding: at batch 1 a decoder step is bound by reading its weights, so
storing Linear weights as int8 (activations stay float, quantized per call) reads 4x fewer bytes."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lmforge.errors import InputError


def quantize_int8(model: nn.Module, recurrent: bool = False) -> nn.Module:
    """Dynamic int8 quantization of every nn.Linear (and, with `recurrent`, every GRU and LSTM) (fbgemm
    kernels); CPU only, inference only."""
    if next(model.parameters()).device.type != "cpu":
        raise InputError("--int8 is for CPU decoding; on a GPU use the default (bf16/fp32) weights.")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise InputError("--int8 needs torch.ao.quantization, which this torch build lacks; drop --int8.") from None
    with warnings.catch_warnings():  # torch marks this API for migration to torchao; it still works here
        warnings.simplefilter("ignore")
        kinds = {nn.Linear, nn.GRU, nn.LSTM} if recurrent else {nn.Linear}
        return quantize_dynamic(model, kinds, dtype=torch.qint8)
