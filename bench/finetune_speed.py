"""Fine-tuning speed: `lmforge finetune --model bert --preset tiny` against Hugging Face `Trainer` with a
`BertForSequenceClassification` of the same shape, on the same examples (sentiment_uci_en, tokenized by
the same tokenizer), batch 32, max length 64, one epoch, 2 threads. Reports training examples/s of both
(lmforge's from its own clock; the Trainer's `train_samples_per_second`), and `predict` latency on one
short text for the tiny presets.
    python bench/finetune_speed.py      (run bench/applications.py first: it makes the tokenizer)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/lmforge-bench-apps")
DATA = SHARED / "sentiment_uci_en"


def hf_trainer(tokenizer_dir: Path) -> float:
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

    args = TrainingArguments(output_dir=str(WORK / "hf_trainer"), per_device_train_batch_size=32, num_train_epochs=1,
                             learning_rate=1e-3, logging_strategy="no", save_strategy="no",
                             report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
    torch.set_num_threads(2)
    result = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collate).train()
    return result.metrics["train_samples_per_second"]


def main() -> None:
    tokenizer = next((WORK / "sotu_data" / "tokens").iterdir())
    run = WORK / "speed" / "bert"
    done = subprocess.run([sys.executable, "-m", "lmforge", "finetune", "--task", "classify", "--model", "bert",
                           "--tokenizer", tokenizer, "--data", DATA, "--epochs", "1", "--batch-size", "32",
                           "--max-len", "64", "--lr", "1e-3", "--threads", "2", "--out", run, "--overwrite", "--json"],
                          capture_output=True, text=True, check=True)
    ours = json.loads(done.stdout)["examples_per_s"]
    theirs = hf_trainer(tokenizer)
    from applications import predict_latency

    latency = predict_latency(run)
    print(f"\n{machine()}")
    print(f"fine-tuning bert tiny, sentiment, batch 32, max length 64: lmforge {ours:,.0f} examples/s, HF Trainer "
          f"{theirs:,.0f} examples/s ({ours / theirs:.2f}x)")
    print(f"predict latency, one short text, bert tiny: {latency:.1f} ms")


if __name__ == "__main__":
    main()
