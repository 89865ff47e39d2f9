"""FSDP on CPU (gloo): two sharded processes give DDP's loss curve for the same global batch with about half
the parameter and optimizer bytes per process; a checkpoint written by two ranks resumes on two and on one
process to the uninterrupted run's weights; activation checkpointing changes memory, not the curve."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file
from tests.training.test_loop import ENV, losses

from conftest import assert_input_error

MODEL = ["--n-layers", "2", "--d-model", "32", "--n-heads", "2", "--max-seq-len", "32", "--dropout", "0"]


def common(prepared, device: str = "cpu"):
    return [*MODEL, "--warmup-steps", "2", "--eval-every", "4", "--eval-windows", "4", "--log-every", "1",
            "--max-steps", "8", "--data", str(prepared["shards"]), "--seed", "3", "--checkpoint-every", "4",
            "--batch-size", "4", "--json", *(["--threads", "1"] if device == "cpu" else ["--device", device])]


def torchrun(args, port: int, processes: int = 2) -> dict:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                           "--master-port", str(port), "-m", "lmforge", *map(str, args)], env=ENV,
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def single(args) -> dict:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], env=ENV, capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def same_weights(a, b, tolerance: float = 0.0) -> None:
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    for name in first:
        assert float((first[name] - second[name]).abs().max()) <= tolerance, name


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory) -> dict:
    """A DDP run and an FSDP run of the same model, data, seed and global batch (2 processes each)."""
    root = tmp_path_factory.mktemp("fsdp")
    ddp = torchrun(["train", "--out", root / "ddp", *common(prepared)], 29631)
    fsdp = torchrun(["train", "--out", root / "fsdp", "--parallel", "fsdp", *common(prepared)], 29632)
    return {"root": root, "ddp": ddp, "fsdp": fsdp}


@pytest.mark.slow
def test_fsdp_trains_like_ddp_in_half_the_memory_and_reshards_on_resume(trained, tmp_path):
    root, ddp, fsdp = trained["root"], trained["ddp"], trained["fsdp"]
    one, two = losses(root / "ddp"), losses(root / "fsdp")
    assert one.keys() == two.keys() and len(one) == 8
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-5, abs=1e-6), step
    assert fsdp["parallel"] == "fsdp" and fsdp["state_bytes_per_rank"] < 0.6 * ddp["state_bytes_per_rank"]
    checkpoint = root / "fsdp" / "checkpoints" / "step_00000004"
    assert (checkpoint / "sharded").is_dir() and (checkpoint / "model.safetensors").exists()
    same_weights(root / "ddp", root / "fsdp", tolerance=1e-6)
    for name in ("two", "one"):   # step 8 forgotten: resume from the shards written at step 4
        shutil.copytree(root / "fsdp", tmp_path / name)
        shutil.rmtree(tmp_path / name / "checkpoints" / "step_00000008")
    torchrun(["train", "--resume", tmp_path / "two", "--json"], 29633)
    single(["train", "--resume", tmp_path / "one", "--batch-size", "8", "--json"])   # the same global batch
    same_weights(root / "fsdp", tmp_path / "two")
    same_weights(root / "fsdp", tmp_path / "one", tolerance=1e-6)
    # resumed on one process, the run still writes shards, so it can go back to several processes
    assert (tmp_path / "one" / "checkpoints" / "step_00000008" / "sharded").is_dir()
    for step in range(5, 9):
        assert losses(tmp_path / "one")[step] == pytest.approx(two[step], rel=1e-5), step


@pytest.mark.slow
def test_activation_checkpointing_keeps_the_curve(prepared, trained, tmp_path):
    recomputed = torchrun(["train", "--out", tmp_path / "ac", "--parallel", "fsdp", "--activation-checkpointing",
                           *common(prepared)], 29635)
    assert recomputed["train_loss"] == pytest.approx(trained["fsdp"]["train_loss"], rel=1e-5)
    assert losses(tmp_path / "ac") == pytest.approx(losses(trained["root"] / "fsdp"), rel=1e-5)


def test_fsdp_needs_torchrun_and_a_checkpoint_of_the_same_model(prepared, cli, tmp_path):
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "solo", "--parallel", "fsdp",
                           *MODEL), "torchrun --nproc-per-node")
    assert not (tmp_path / "solo" / "model.safetensors").exists()
    assert_input_error(cli("train", "--data", prepared["shards"], "--out", tmp_path / "muon", "--parallel", "fsdp",
                           "--optimizer", "muon", *MODEL), "muon")


@pytest.mark.slow
def test_a_sharded_checkpoint_refuses_another_model(trained, cli, tmp_path):
    shutil.copytree(trained["root"] / "fsdp", tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step_00000008")
    config = tmp_path / "run" / "config.toml"
    config.write_text(config.read_text().replace("d_model = 32", "d_model = 64"))
    assert_input_error(cli("train", "--resume", tmp_path / "run"), "does not fit", "Size mismatch")


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available() or __import__("torch").cuda.device_count() < 2,
                    reason="needs two CUDA devices (FSDP with bf16 gathered weights and nccl)")
def test_fsdp_on_two_gpus_with_mixed_precision(prepared, tmp_path):
    ddp = torchrun(["train", "--out", tmp_path / "ddp", *common(prepared, "cuda")], 29637)
    fsdp = torchrun(["train", "--out", tmp_path / "fsdp", "--parallel", "fsdp", *common(prepared, "cuda")], 29638)
    assert fsdp["train_loss"] == pytest.approx(ddp["train_loss"], rel=2e-2)   # bf16 weights against autocast


@pytest.mark.slow
def test_a_ddp_checkpoint_is_not_resumed_under_fsdp(trained, tmp_path):
    shutil.copytree(trained["root"] / "ddp", tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step_00000008")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           "29639", "-m", "lmforge", "train", "--resume", str(tmp_path / "run"), "--parallel", "fsdp"],
                          env=ENV, capture_output=True, timeout=300, text=True)
    assert done.returncode != 0
    errors = {line for line in done.stderr.splitlines() if line.startswith("lmforge: error:")}
    assert len(errors) == 1 and "written without FSDP" in errors.pop()
    # each rank exits 2 with that line; the only traceback is torchrun's own report of failed children
    assert "src/lmforge/" not in done.stderr and "ChildFailedError" in done.stderr
    assert not (tmp_path / "run" / "checkpoints" / "step_00000008").exists()   # nothing written
