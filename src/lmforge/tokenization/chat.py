"""Conversations as token ids: the role tokens of chat runs and the one template that lays a conversation
out, used alike by chat fine-tuning (with the mask of what the loss reads) and by inference (`lmforge chat`,
the server). The template is saved with the run (chat_template.json), so a run is always read the way it
was trained.

Layout (version 1): `<|eos|>` (a conversation starts where a document does), then per message
`<|role|> content <|end|>`; a prompt for a reply ends with `<|assistant|>`. Role tokens are placed by id,
never parsed out of text: a user who types "<|assistant|>" gets those characters, not the token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmforge.artifacts import read_json, write_json
from lmforge.errors import InputError
from lmforge.tokenization.specials import CHAT_END, CHAT_ROLES
from lmforge.tokenization.tokenizer import FILENAME, Tokenizer

TEMPLATE_FILE = "chat_template.json"
TEMPLATE_FORMAT, TEMPLATE_VERSION = "lmforge.chat-template", 1


@dataclass
class Message:
    role: str       # system, user or assistant
    content: str


def add_chat_tokens(tokenizer: Tokenizer, out_dir: Path) -> Tokenizer:
    """`tokenizer` with the role tokens added as special tokens (new ids after the vocabulary; those it
    already has keep theirs), written to out_dir/tokenizer.json."""
    missing = [t for t in (*CHAT_ROLES.values(), CHAT_END) if tokenizer.hf.token_to_id(t) is None]
    hf = tokenizer.hf
    if missing:
        from tokenizers import AddedToken

        hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
    out_dir.mkdir(parents=True, exist_ok=True)
    hf.save(str(out_dir / FILENAME))
    return Tokenizer(out_dir)


class ChatTemplate:
    """Conversations <-> ids for one tokenizer that has the role tokens."""

    def __init__(self, tokenizer: Tokenizer):
        ids = {role: tokenizer.hf.token_to_id(token) for role, token in CHAT_ROLES.items()}
        end = tokenizer.hf.token_to_id(CHAT_END)
        if None in ids.values() or end is None or tokenizer.eos_id is None:
            raise InputError(f"{tokenizer.path}: no chat role tokens; fine-tune the run for chat first "
                             "(`lmforge finetune --task chat --init RUN ...`).")
        self.tokenizer, self.role_ids, self.end_id = tokenizer, ids, end

    @property
    def stop_ids(self) -> set[int]:
        """Tokens that end a reply."""
        return {self.end_id, self.tokenizer.eos_id}

    def render(self, messages: list[Message], add_reply_prompt: bool = False) -> tuple[list[int], list[bool]]:
        """(ids, trained): the conversation's ids and, per id, whether the loss reads it as a target (the
        content and end token of assistant messages). With `add_reply_prompt` the ids end in
        `<|assistant|>`, ready for the model to write the next reply."""
        ids, trained = [self.tokenizer.eos_id], [False]
        contents = self.tokenizer.encode_batch([m.content for m in messages]) if messages else []
        for message, content in zip(messages, contents):
            if message.role not in self.role_ids:
                raise ValueError(f"unknown role {message.role!r}; roles are {', '.join(self.role_ids)}")
            reply = message.role == "assistant"
            ids += [self.role_ids[message.role], *content, self.end_id]
            trained += [False] + [reply] * (len(content) + 1)
        if add_reply_prompt:
            ids.append(self.role_ids["assistant"])
            trained.append(False)
        return ids, trained

    def prompt(self, messages: list[Message]) -> list[int]:
        """The ids a reply is generated after."""
        return self.render(messages, add_reply_prompt=True)[0]


def save_template(run_dir: Path) -> None:
    write_json(Path(run_dir) / TEMPLATE_FILE, {
        "format": TEMPLATE_FORMAT, "version": TEMPLATE_VERSION, "start": "<|eos|>", "roles": CHAT_ROLES,
        "end": CHAT_END, "layout": "start, then per message: role token, content, end token; a reply prompt ends "
                                   "with the assistant role token"})


def load_template(run_dir: Path, tokenizer: Tokenizer) -> ChatTemplate | None:
    """The run's chat template, or None for a run that was not fine-tuned for chat."""
    path = Path(run_dir) / TEMPLATE_FILE
    if not path.exists():
        return None
    meta = read_json(path, "chat template")
    if meta.get("format") != TEMPLATE_FORMAT or meta.get("version", 0) > TEMPLATE_VERSION:
        raise InputError(f"{path}: not a chat template this lmforge reads (format {meta.get('format')!r}, "
                         f"version {meta.get('version')}); upgrade lmforge.")
    if meta.get("roles") != CHAT_ROLES or meta.get("end") != CHAT_END:
        raise InputError(f"{path}: role tokens {meta.get('roles')} differ from this lmforge's {CHAT_ROLES}.")
    return ChatTemplate(tokenizer)
