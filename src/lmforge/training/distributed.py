"""Everything torch.distributed: init from torchrun's environment, wrap (DDP, or FSDP2 sharding applied
from outside the model per block, as torchtitan does), no_sync, reductions, and the sharded checkpoints
of FSDP runs through torch.distributed.checkpoint (saved on N ranks, loaded on M or on one process).
Device choice is `lmforge.devices`."""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); gloo on CPU, nccl on GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    if device.type == "cuda" and info.world_size > 1:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


PARALLEL = ("ddp", "fsdp")
SHARDED = "sharded"   # a checkpoint's torch.distributed.checkpoint folder (FSDP runs)


def wrap(view: nn.Module, info: DistInfo, device: torch.device, parallel: str = "ddp",
         activation_checkpointing: bool = False) -> nn.Module:
    """The training view (backbone, heads and loss in one forward) as the processes train it: as is on one
    process, under DDP (replicas), or sharded by FSDP2 (`fully_shard` per block, then the root)."""
    if activation_checkpointing:
        from torch.distributed._composable import checkpoint

        for block in blocks_of(view.model):
            checkpoint(block)   # recompute the block's activations in backward instead of keeping them
    if info.world_size == 1:
        return view
    if parallel == "fsdp":
        return shard(view, device)
    return DistributedDataParallel(view, device_ids=[device.index] if device.type == "cuda" else None)


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model (the members of its ModuleLists): FSDP's units of sharding."""
    return [block for module in model.modules() if isinstance(module, nn.ModuleList) for block in module]


def shard(view: nn.Module, device: torch.device) -> nn.Module:
    """FSDP2: each block's parameters sharded across the ranks and gathered just before it runs; the rest
    (embeddings, final norm, heads) form the root unit, kept gathered from forward to backward. On a GPU
    the gathered weights are bf16 and gradients are reduced in fp32 (untested here: no GPU)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if device.type == "cuda" else MixedPrecisionPolicy()
    for block in blocks_of(view.model):
        fully_shard(block, mp_policy=policy)
    fully_shard(view, mp_policy=policy, reshard_after_forward=False)
    return view


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def unwrap(model: nn.Module) -> nn.Module:
    model = model.module if isinstance(model, DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)  # torch.compile wrapper


@contextlib.contextmanager
def _without_gradient_sync(model: nn.Module):
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def no_sync(model: nn.Module, enabled: bool):
    """Skip the gradient all-reduce (DDP) or reduce-scatter (FSDP) on all but the last micro-step of an
    accumulation."""
    if enabled and isinstance(model, DistributedDataParallel):
        return model.no_sync()
    if enabled and is_sharded(model):
        return _without_gradient_sync(model)
    return contextlib.nullcontext()


@contextlib.contextmanager
def gathered(net: nn.Module):
    """The root unit's weights gathered for code that calls the model outside the training forward
    (validation, samples); each block gathers its own as it runs."""
    if not is_sharded(net):
        yield
        return
    net.unshard()
    try:
        yield
    finally:
        net.reshard()


def local_bytes(model: nn.Module, optimizers: list) -> int:
    """Bytes of parameters and optimizer state this process holds (its shards, under FSDP)."""
    def size(t) -> int:
        local = t.to_local() if hasattr(t, "to_local") else t
        return local.numel() * local.element_size()

    total = sum(size(p) for p in model.parameters())
    for optimizer in optimizers:
        for state in optimizer.state.values():
            total += sum(size(v) for v in state.values() if isinstance(v, torch.Tensor) and v.dim() > 0)
    return total


def checkpoint_errors() -> tuple[type[BaseException], ...]:
    """What torch.distributed.checkpoint raises when a checkpoint does not fit the model it is loaded into."""
    from torch.distributed.checkpoint.api import CheckpointException

    return (CheckpointException, RuntimeError, ValueError, KeyError)


def checkpoint_error_line(error: BaseException) -> str:
    """The first line of what went wrong (a CheckpointException wraps each rank's error)."""
    failures = getattr(error, "failures", None)
    if failures:   # rank -> the exception, or (exception, its traceback frames)
        error = next(iter(failures.values()))
        error = error[0] if isinstance(error, tuple) else getattr(error, "exc", error)
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def full_state_dict(model: nn.Module, sharded: bool) -> dict:
    """The whole model's tensors (on rank 0, on the CPU; empty on the others when sharded): a collective
    when sharded, so every rank calls it."""
    if not sharded:
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_sharded(path, model: nn.Module, optimizers: list) -> None:
    """Model and optimizer state, each rank writing its shards (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    dcp.save({"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizers)},
             checkpoint_id=str(path))


def load_sharded(path, model: nn.Module, optimizers: list) -> None:
    """Read a sharded checkpoint into this run's layout, whatever the number of ranks that wrote it (one
    process reads it whole)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizers)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # one process reading a multi-rank checkpoint is warned it has no group
        dcp.load(state, checkpoint_id=str(path))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizers, state["optim"])


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    return all_reduce_sum(tensor, info) / info.world_size


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is true on any rank (e.g. 'time is up')."""
    if info.world_size == 1:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_cat(tensor: torch.Tensor, info: DistInfo, dim: int) -> torch.Tensor:
    """Every rank's `tensor` concatenated along `dim` in rank order (the tensor itself on one process)."""
    if info.world_size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(info.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=dim)
