"""Chat fine-tuning, end to end: read conversations (JSONL `messages` lists, or prompt/response records),
add the role tokens to the base run's tokenizer and grow its embeddings to match, lay every conversation
out with the chat template, train the decoder on the replies only (training/chat_spec.py) with the one loop,
and report reply perplexity on held-out conversations beside the base run's on the same replies.

`finetune --task chat` comes here; `eval` on a chat run calls `evaluate_chat`."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from lmforge.artifacts import atomic_write_text
from lmforge.devices import pick_device
from lmforge.errors import InputError
from lmforge.inference.loading import LoadedRun, load, load_lm
from lmforge.runs import RUN_CONFIG, Run, RunConfig, clear_run, open_run, source_path, write_run
from lmforge.tasks.data import read_records, read_splits
from lmforge.tokenization.chat import ChatTemplate, Message, add_chat_tokens, load_template, save_template
from lmforge.tokenization.tokenizer import Tokenizer
from lmforge.training.chat_spec import CHAT_LOSS, PackedConversations, chat_spec, reply_nll
from lmforge.training.config import TrainConfig
from lmforge.training.loop import TrainSetup, train

ROLES = ("system", "user", "assistant")
# measured on chatterbot_dialog from the tiny run of bench/chat_finetune.py (reply perplexity on valid):
# batch 32, 3 epochs, LR 5e-4 (the task defaults): 46.8; batch 8: 25.1; batch 8, 5 epochs, LR 1e-3: 18.8;
# 8 epochs: 19.0; batch 4: 18.0 at 1.1x the time
CHAT_DEFAULTS = dict(batch_size=8, epochs=5.0, lr=1e-3, max_len=256)


@dataclass
class Conversation:
    messages: list[Message]
    source: str


@dataclass
class ChatFields:
    """The [chat] section: how conversations were read."""

    messages_field: str = "messages"
    prompt_field: str = "prompt"
    response_field: str = "response"
    system: str | None = None
    """a system message put before every conversation"""


def _conversation(record: dict, where: str, fields: ChatFields) -> Conversation | str:
    """The record as a conversation, or the reason it is skipped."""
    if isinstance(record.get(fields.messages_field), list):
        messages = []
        for message in record[fields.messages_field]:
            if not isinstance(message, dict) or message.get("role") not in ROLES \
                    or not isinstance(message.get("content"), str):
                return "bad_message"
            messages.append(Message(message["role"], message["content"]))
    elif isinstance(record.get(fields.prompt_field), str) and isinstance(record.get(fields.response_field), str):
        messages = [Message("user", record[fields.prompt_field]), Message("assistant", record[fields.response_field])]
    else:
        return "no_messages"
    if not any(m.role == "assistant" and m.content.strip() for m in messages):
        return "no_reply"
    if fields.system and messages[0].role != "system":
        messages.insert(0, Message("system", fields.system))
    return Conversation(messages, where)


def read_conversations(data: str, fields: ChatFields, valid_fraction: float = 0.1):
    """(Splits of conversations, {reason: count} of the records skipped)."""
    skipped: dict[str, int] = {}

    def load_file(path: Path):
        for record, where in read_records(path):
            conversation = _conversation(record, where, fields)
            if isinstance(conversation, str):
                skipped[conversation] = skipped.get(conversation, 0) + 1
            else:
                yield conversation

    def key(conversation: Conversation) -> str:
        return "\n".join(m.content for m in conversation.messages)

    splits = read_splits(data, load_file, key, valid_fraction)
    if not splits.train:
        reasons = ", ".join(f"{n} {r}" for r, n in skipped.items()) or "no records"
        raise InputError(f"{data}: no training conversations ({reasons}); records need a {fields.messages_field!r} "
                         f"list of {{role, content}} or {fields.prompt_field!r}/{fields.response_field!r} fields "
                         "(--messages-field, --prompt-field, --response-field).")
    return splits, skipped


def grow_vocabulary(loaded: LoadedRun, vocab_size: int) -> tuple[torch.nn.Module, dict]:
    """A copy of the run's model with `vocab_size` rows in its embedding and output head: the old rows as
    they were, new rows (the role tokens) at the mean of the old ones. Returns (model, model section)."""
    spec = loaded.spec
    config = replace(loaded.model.config, vocab_size=vocab_size)
    model = spec.module_cls(config)
    old = loaded.model.state_dict()
    new = model.state_dict()
    for name, tensor in new.items():
        source = old[name]
        if source.shape == tensor.shape:
            tensor.copy_(source)
        else:   # vocab-sized on dim 0
            tensor[:source.size(0)] = source
            tensor[source.size(0):] = source.mean(dim=0)
    model.load_state_dict(new)
    return model, asdict(config)


def base_layout(tokenizer: Tokenizer, messages: list[Message]) -> tuple[list[int], list[bool]]:
    """A conversation as the plain text a run without role tokens reads best: "User: ...\n" lines, the reply
    content (with the space before it) trained."""
    ids, trained = [tokenizer.eos_id], [False]
    newline = tokenizer.encode("\n")
    for message in messages:
        head = tokenizer.encode(f"{message.role.capitalize()}:")
        content = tokenizer.encode(" " + message.content)
        ids += [*head, *content, *newline]
        trained += [False] * len(head) + [message.role == "assistant"] * len(content) + [False] * len(newline)
    return ids, trained


def content_only(template: ChatTemplate, messages: list[Message]) -> tuple[list[int], list[bool]]:
    """The template's layout with only the reply content trained (not the end token): what reply perplexity
    compares with the base run's."""
    ids, trained = template.render(messages)
    return ids, [t and i != template.end_id for i, t in zip(ids, trained)]


def _scored_bytes(tokenizer: Tokenizer, rendered, max_len: int | None) -> int | None:
    """UTF-8 bytes of the scored reply tokens (None for tokenizers whose tokens do not spell their bytes)."""
    lengths = tokenizer.token_byte_lengths()
    if lengths is None:
        return None
    total = 0
    for ids, trained in rendered:
        ids, trained = (ids[:max_len], trained[:max_len]) if max_len else (ids, trained)
        total += sum(int(lengths[i]) for i, t in zip(ids[1:], trained[1:]) if t and i < len(lengths))
    return total


def reply_perplexity(loaded: LoadedRun, conversations: list[Conversation], device) -> dict:
    """Per-token perplexity of the reply content, and its bits per byte (which compares runs that lay the
    conversation out differently: a chat run with its template, a base run as plain text)."""
    template = load_template(loaded.run.path, loaded.tokenizer)
    layout = (lambda m: content_only(template, m)) if template else (lambda m: base_layout(loaded.tokenizer, m))
    rendered = [layout(c.messages) for c in conversations]
    max_len = getattr(loaded.model.config, "max_seq_len", None)
    total, count = reply_nll(loaded.model, rendered, device, max_len=max_len)
    loss = total / max(count, 1)
    scored_bytes = _scored_bytes(loaded.tokenizer, rendered, max_len)
    return {"reply_loss": loss, "reply_perplexity": math.exp(min(loss, 50)), "reply_tokens": count,
            "reply_bits_per_byte": total / math.log(2) / scored_bytes if scored_bytes else None,
            "conversations": len(conversations)}


def finetune_chat(c) -> dict:
    """`finetune --task chat` (c: a FinetuneConfig)."""
    out = Path(c.out)
    if (out / RUN_CONFIG).exists() and not c.overwrite:
        raise InputError(f"{out}: already holds a run; choose another --out, or pass --overwrite.")
    if c.init is None:
        raise InputError("--task chat fine-tunes a trained decoder: pass --init RUN (a gpt, lstm, gru or rnn run).")
    base = load(c.init, "finetune --init", ("lm",))
    if base.run.family not in CHAT_LOSS:
        raise InputError(f"{c.init}: a {base.run.family} run; chat fine-tuning needs a decoder "
                         f"({', '.join(CHAT_LOSS)}).")
    fields = ChatFields(c.messages_field, c.prompt_field, c.response_field, c.system)
    splits, skipped = read_conversations(c.data, fields, c.valid_fraction)
    if c.overwrite:   # the data is readable: the old run goes entirely
        clear_run(out)
    tokenizer = add_chat_tokens(Tokenizer(base.tokenizer.path), out)
    template = ChatTemplate(tokenizer)
    model, model_section = grow_vocabulary(base, tokenizer.vocab_size)
    c = replace(c, **{name: value for name, value in CHAT_DEFAULTS.items() if getattr(c, name) is None})
    max_len = min(c.max_len, getattr(model.config, "max_seq_len", None) or c.max_len)
    train_rendered = [template.render(conv.messages) for conv in splits.train]
    packed = PackedConversations.of(train_rendered)
    steps_per_epoch = max(1, (len(packed.ids) - 1) // max_len // c.batch_size)
    epochs = c.epochs
    train_config = TrainConfig(batch_size=c.batch_size, seq_len=max_len, lr=c.lr, weight_decay=0.01,
                               max_steps=None if c.max_time else max(1, round(epochs * steps_per_epoch)),
                               max_time=c.max_time, warmup_fraction=0.05,
                               eval_every=None if c.max_time else max(1, steps_per_epoch // 2),
                               checkpoint_every=10**9, checkpoint_minutes=None, log_every=10, seed=c.seed,
                               threads=c.threads, device=c.device, grad_clip=1.0)
    contract = RunConfig(base.run.family, base.run.contract.preset, "chat", base.run.contract.shards, tokenizer.sha256,
                         init_from=str(Path(c.init).resolve()), corpus=source_path(c.data), kind="lm")
    write_run(out, contract, {"model": model_section, "train": train_config, "chat": fields})
    save_template(out)
    valid = [template.render(conv.messages) for conv in splits.valid]
    spec = chat_spec(base.run.family, packed, valid, max_len, tokenizer.eos_id)
    start = time.perf_counter()
    summary = train(TrainSetup(out, model, train_config, spec, base.run.family, resume_command=None))
    result = {"out": str(out), "task": "chat", "family": base.run.family, "init": str(c.init),
              "examples": {split: len(items) for split, items in splits}, "skipped": skipped,
              "train_tokens": len(packed.ids), "trained_targets": int(packed.trained.sum()),
              "train_seconds": summary["train_time"], "seconds": time.perf_counter() - start, "steps": summary["steps"]}
    if splits.valid:
        result["valid"] = evaluate_chat(open_run(out), c.data, "valid", splits=splits)
    atomic_write_text(out / "report.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def evaluate_chat(run: Run, data: str | None = None, split: str = "valid", device: str = "auto",
                  splits=None) -> dict:
    """Reply perplexity of a chat run on a split of its conversations, beside that of the run it was
    fine-tuned from on the same replies (when that run is still there)."""
    fields = run.section("chat", ChatFields)
    if splits is None:
        splits, _ = read_conversations(data or run.contract.corpus, fields)
    conversations = getattr(splits, split)
    if not conversations:
        raise InputError(f"{data or run.contract.corpus}: no {split} conversations to evaluate.")
    device = pick_device(device)
    result = {"objective": "chat", "family": run.family, "split": split, "run": str(run.path),
              **reply_perplexity(load_lm(run, device), conversations, device)}
    init = run.contract.init_from
    if init and (Path(init) / RUN_CONFIG).exists():
        result["base"] = {"run": init, **reply_perplexity(load_lm(open_run(Path(init)), device), conversations,
                                                          device)}
    return result


def summary_lines(result: dict) -> list[str]:
    lines = [f"finetune: {result['family']} chat on {result['examples'].get('train', 0):,} conversations "
             f"({result['trained_targets']:,} reply tokens) in {result['train_seconds']:.1f} s -> {result['out']}"]
    if result.get("skipped"):
        lines.append("  skipped records: " + ", ".join(f"{n:,} {r}" for r, n in result["skipped"].items()))
    if result.get("valid"):
        lines.append(chat_eval_line(result["valid"]))
    return lines


def chat_eval_line(result: dict) -> str:
    line = (f"  {result['split']}: reply perplexity {result['reply_perplexity']:.2f} over {result['reply_tokens']:,} "
            f"reply tokens of {result['conversations']:,} conversations")
    if result.get("reply_bits_per_byte") is not None:
        line += f", {result['reply_bits_per_byte']:.3f} bits/byte"
    base = result.get("base")
    if base:
        bpb = f", {base['reply_bits_per_byte']:.3f} bits/byte" if base.get("reply_bits_per_byte") is not None else ""
        line += f" (base run, as plain text: perplexity {base['reply_perplexity']:.2f}{bpb})"
    return line
