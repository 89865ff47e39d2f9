"""`lmforge chat`: talk to a chat run (`finetune --task chat`) in the terminal. Replies stream as they are
written; the conversation is kept (oldest turns dropped when it outgrows the context). Commands:
/reset (forget the conversation), /system TEXT (set the system message), /quit (or Ctrl-D).

Example:
    lmforge chat --run runs/chat --temperature 0.7 --seed 1
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import add_config_args, config_from_args
from lmforge.errors import InputError
from lmforge.inference.sampling import SamplingConfig


@dataclass
class ChatConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """a chat run (finetune --task chat)"""
    system: str | None = None
    """system message at the start of the conversation"""
    max_new_tokens: int = 200
    """longest reply"""
    seed: int | None = None
    """seed of the first reply (each later one takes the next seed)"""


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, ChatConfig, switches=True)
    add_config_args(parser, SamplingConfig, switches=True)


def _fit(template, messages, limit: int | None, room: int):
    """The conversation's prompt ids, dropping the oldest non-system turns until it fits."""
    while True:
        ids = template.prompt(messages)
        if not limit or len(ids) + room <= limit or len(messages) <= 1:
            return ids[-(limit - room):] if limit and len(ids) + room > limit else ids
        drop = 1 if messages[0].role == "system" else 0
        del messages[drop:drop + 2]


def run(args: argparse.Namespace) -> int:
    from lmforge.inference.decoding import generate
    from lmforge.inference.loading import text_decoder
    from lmforge.tokenization.chat import Message, load_template

    c = config_from_args(ChatConfig, args)
    sampling = config_from_args(SamplingConfig, args)
    decoder = text_decoder(c.run, "chat")
    template = load_template(c.run, decoder.tokenizer) if decoder.tokenizer is not None else None
    if template is None:
        raise InputError(f"{c.run}: not a chat run (no chat_template.json); fine-tune it with "
                         "`lmforge finetune --task chat --init RUN --data CONVERSATIONS --out OUT`.")
    messages = [Message("system", c.system)] if c.system else []
    seed = c.seed
    print(f"chat with {decoder.run.path.name}: /reset, /system TEXT, /quit", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        if text == "/reset":
            messages = [m for m in messages if m.role == "system"]
            print("(conversation reset)", file=sys.stderr)
            continue
        if text.startswith("/system"):
            messages = [Message("system", text[len("/system"):].strip()),
                        *[m for m in messages if m.role != "system"]]
            print("(system message set)", file=sys.stderr)
            continue
        messages.append(Message("user", line))
        ids = _fit(template, messages, decoder.model.max_context, c.max_new_tokens)
        sys.stdout.write("model> ")
        reply = generate(decoder.model, ids, max_new_tokens=c.max_new_tokens, sampling=sampling, seed=seed,
                         eos_id=template.end_id, decode=decoder.decode,
                         on_text=lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
        sys.stdout.write("\n")
        messages.append(Message("assistant", reply.text))
        seed = None if seed is None else seed + 1
