"""Fine-tuning speed: `lmforge finetune --model bert --preset tiny` against Hugging Face `Trainer` with a
`BertForSequenceClassification` of the same shape, on the same examples (sentiment_uci_en's train split
alone, so neither side validates; tokenized by the same tokenizer), batch 32, max length 64, one epoch, 2
threads. Two equal clocks: the whole training call (lmforge's `train()`, the Trainer's `train()`:
`train_samples_per_second`) and steps only (lmforge's own step clock; the Trainer's from each
on_step_begin to the next, batch loading included as lmforge's includes it). `predict` latency on one
short text: the CLI verb as a user runs it (a new process: start-up, loading, prediction), and an
in-process call on a loaded model.
    python bench/finetune_speed.py      (run bench/applications.py first: it makes the tokenizer)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/lmforge-bench-apps")
DATA = SHARED / "sentiment_uci_en"


def train_only() -> Path:
    """The sentiment train split alone: fine-tuning then validates on nothing, on either side."""
    folder = WORK / "speed_data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text((DATA / "train.jsonl").read_text())
    return folder


def hf_trainer(tokenizer_dir: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from lmforge.models.bert import PRESETS, BERTConfig
    from lmforge.tasks.encode import encode_texts
    from lmforge.tokenization.tokenizer import Tokenizer

    tokenizer = Tokenizer(tokenizer_dir)
    records = [json.loads(line) for line in (DATA / "train.jsonl").read_text().splitlines()]
    ids, _ = encode_texts(tokenizer, True, [r["text"] for r in records], None, 64)
    labels = sorted({r["label"] for r in records})
    ours = BERTConfig(**PRESETS["tiny"], vocab_size=tokenizer.vocab_size)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=ours.vocab_size, hidden_size=ours.d_model, num_hidden_layers=ours.n_layers,
        num_attention_heads=ours.n_heads, intermediate_size=ours.d_ff, max_position_embeddings=ours.max_seq_len,
        num_labels=len(labels), hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.0))

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(ids)

        def __getitem__(self, i):
            return {"input_ids": torch.tensor(ids[i]), "labels": labels.index(records[i]["label"])}

    def collate(rows):
        width = max(len(r["input_ids"]) for r in rows)
        tokens = torch.full((len(rows), width), tokenizer.pad_id or 0)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            tokens[k, :len(r["input_ids"])] = r["input_ids"]
            mask[k, :len(r["input_ids"])] = 1
        return {"input_ids": tokens, "attention_mask": mask, "labels": torch.tensor([r["labels"] for r in rows])}

    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Seconds from each step's start to the next's (the last to the end of training)."""

        def __init__(self):
            self.starts = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

    args = TrainingArguments(output_dir=str(WORK / "hf_trainer"), per_device_train_batch_size=32, num_train_epochs=1,
                             learning_rate=1e-3, logging_strategy="no", save_strategy="no",
                             report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
    torch.set_num_threads(2)
    clock = StepClock()
    result = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collate, callbacks=[clock]).train()
    steps_seconds = clock.starts[-1] - clock.starts[0]
    return {"whole": result.metrics["train_samples_per_second"], "steps": len(records) / steps_seconds}


def cli_latency(run: Path, repeats: int = 5) -> float:
    """Median wall time of `lmforge predict --run RUN TEXT` as a new process, in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lmforge", "predict", "--run", run,
                        "The food was great but the service was slow."], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def main() -> None:
    tokenizer = next((WORK / "sotu_data" / "tokens").iterdir())
    run = WORK / "speed" / "bert"
    done = subprocess.run([sys.executable, "-m", "lmforge", "finetune", "--task", "classify", "--model", "bert",
                           "--tokenizer", tokenizer, "--data", train_only(), "--epochs", "1", "--batch-size", "32",
                           "--max-len", "64", "--lr", "1e-3", "--threads", "2", "--out", run, "--overwrite", "--json"],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    ours = {"whole": result["examples"]["train"] / result["seconds"],
            "steps": result["examples"]["train"] / result["train_seconds"]}
    theirs = hf_trainer(tokenizer)
    from applications import predict_latency

    row = {"lmforge_whole_examples_per_s": round(ours["whole"]), "hf_whole_examples_per_s": round(theirs["whole"]),
           "whole_ratio": round(ours["whole"] / theirs["whole"], 2),
           "lmforge_steps_examples_per_s": round(ours["steps"]), "hf_steps_examples_per_s": round(theirs["steps"]),
           "steps_ratio": round(ours["steps"] / theirs["steps"], 2),
           "predict_cli_ms": round(cli_latency(run)), "predict_in_process_ms": round(predict_latency(run), 1)}
    print(f"\n{machine()}")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
