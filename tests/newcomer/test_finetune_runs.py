"""Fine-tuning runs that overwrite and resume cleanly: --overwrite leaves nothing of the old run, Ctrl-C
names the run's own checkpoint and the command that continues it, the resumed run ends with the weights of
the uninterrupted one, and an interrupted run is marked wherever it is used."""

import json

import torch
from safetensors.torch import load_file
from tests.tasks.test_finetune import keyword_examples, write_jsonl

from lmforge.training import control

BILSTM = ["--task", "classify", "--model", "bilstm", "--epochs", "2", "--batch-size", "16", "--threads", "1",
          "--model-args", "d_model=16", "d_embed=16", "n_layers=1"]


def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", keyword_examples(160, 0))
    write_jsonl(folder / "valid.jsonl", keyword_examples(40, 1))
    return folder


def stop_after(monkeypatch, calls: int) -> None:
    """Ctrl-C during step `calls`: the loop's stop request says so after that many steps."""
    seen = [0]

    def stopping(self) -> bool:
        seen[0] += 1
        return seen[0] >= calls
    monkeypatch.setattr(control.StopRequest, "stopping", stopping)


def test_overwrite_leaves_no_file_of_the_old_run(tmp_path, cli):
    folder = data(tmp_path)
    run = tmp_path / "run"
    assert cli("finetune", *BILSTM, "--data", folder, "--out", run).code == 0
    (run / "stale-plot.png").write_bytes(b"old")
    old_checkpoints = {p.name for p in (run / "checkpoints").iterdir()}
    again = cli("finetune", "--task", "classify", "--model", "tfidf-logreg", "--data", folder, "--out", run,
                "--overwrite")
    assert again.code == 0, again.err
    assert not (run / "stale-plot.png").exists() and not (run / "checkpoints").exists()
    assert not (run / "model.safetensors").exists() and old_checkpoints


def test_ctrl_c_then_resume_equals_the_uninterrupted_run(tmp_path, cli, monkeypatch):
    folder = data(tmp_path)
    straight = cli("finetune", *BILSTM, "--data", folder, "--out", tmp_path / "straight")
    assert straight.code == 0, straight.err
    stop_after(monkeypatch, 7)
    stopped = cli("finetune", *BILSTM, "--data", folder, "--out", tmp_path / "stopped")
    assert stopped.code == 130
    assert f"lmforge finetune --resume {tmp_path / 'stopped'}" in stopped.err
    assert str(tmp_path / "stopped" / "checkpoints") in stopped.err
    assert json.loads((tmp_path / "stopped" / "interrupted.json").read_text())["step"] == 7
    used = cli("predict", "--run", tmp_path / "stopped", "good day")
    assert used.code == 0 and "was interrupted at step 7" in used.err
    listed = cli("runs", tmp_path, "--json").json()["runs"]
    assert {r["run"].split("/")[-1]: r["status"] for r in listed} == {"stopped": "interrupted", "straight": "done"}
    monkeypatch.undo()
    resumed = cli("finetune", "--resume", tmp_path / "stopped")
    assert resumed.code == 0, resumed.err
    assert not (tmp_path / "stopped" / "interrupted.json").exists()
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    report = json.loads((tmp_path / "stopped" / "report.json").read_text())
    assert report["valid"]["macro_f1"] == json.loads((tmp_path / "straight" / "report.json").read_text())[
        "valid"]["macro_f1"]
