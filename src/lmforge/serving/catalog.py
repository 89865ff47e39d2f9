"""The runs a server serves: each run directory named on the command line, opened (checked before the port
is bound) and then loaded by its kind, with the routes its kind answers. Runs are loaded through
inference/ only: safetensors and JSON, nothing unpickled."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmforge.errors import InputError
from lmforge.runs import Run, open_run
from lmforge.serving.engine import Engine

COMPLETIONS, CHAT, EMBEDDINGS, SCORE = "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/score"
CLASSIFY, TAG, ANSWER, TRANSLATE = "/v1/classify", "/v1/tag", "/v1/answer", "/v1/translate"
TASK_ROUTES = {"classify": CLASSIFY, "pair": CLASSIFY, "tag": TAG, "segment": TAG, "qa": ANSWER}


@dataclass
class ServedModel:
    """One run behind the server: what it is, the routes it answers, and (once loaded) what answers them."""

    name: str
    run: Run
    routes: tuple[str, ...]
    loaded: bool = False
    decoder: object = None            # inference.loading.TextDecoder
    template: object = None           # tokenization.chat.ChatTemplate of a chat run
    engine: Engine | None = None
    task_run: object = None           # inference.tasks.TaskRun
    encoder: object = None            # inference.loading.LoadedRun of an encoder (embeddings)
    vectors: object = None            # embeddings.vectors.WordVectors
    translator: object = None         # inference.translation.Translator
    lock: object = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return self.run.contract.kind

    def describe(self) -> dict:
        c = self.run.contract
        return {"id": self.name, "object": "model", "created": int(self.run.config_path.stat().st_mtime),
                "owned_by": "lmforge", "kind": c.kind, "family": c.family, "objective": c.objective,
                "task": c.task, "labels": c.labels, "routes": list(self.routes), "loaded": self.loaded,
                "chat": self.template is not None or self.run.raw("chat") != {},
                "context_length": self.run.raw("model").get("max_seq_len")}


def routes_of(run: Run) -> tuple[str, ...]:
    """The routes a run's kind answers (an lm run's depend on whether it generates)."""
    from lmforge.models import ALL_MODELS

    kind = run.contract.kind
    if kind == "lm":
        spec = ALL_MODELS.get(run.family)
        if spec is not None and spec.kind == "encoder":
            return (EMBEDDINGS,)
        chat = (CHAT,) if run.contract.objective == "chat" else ()
        return (COMPLETIONS, *chat, EMBEDDINGS, SCORE)
    if kind == "ngram":
        return (COMPLETIONS, SCORE)
    if kind == "embeddings":
        return (EMBEDDINGS,)
    if kind in ("task", "baseline"):
        return (TASK_ROUTES[run.contract.task],)
    if kind == "seq2seq":
        return (TRANSLATE,)
    return ()


def open_models(paths: list[Path]) -> dict[str, ServedModel]:
    """Every named directory opened as a run (a directory that is not one is an InputError, before the port
    is bound), named by its directory (a repeated name gets -2, -3, ...)."""
    models: dict[str, ServedModel] = {}
    for path in paths:
        run = open_run(Path(path))
        name, n = run.path.resolve().name, 2
        while name in models:
            name, n = f"{run.path.resolve().name}-{n}", n + 1
        if not routes_of(run):
            raise InputError(f"{path}: {run.kind.what} has nothing the server can answer.")
        models[name] = ServedModel(name, run, routes_of(run))
    return models


def load_model(served: ServedModel, max_batch: int, max_queue: int, threads: int | None,
               wake=None, own_thread: bool = True) -> None:
    """Load what answers the model's routes (slow: weights are read here, after the port is bound)."""
    import threading

    from lmforge.inference.loading import LOADERS, load_lm, text_decoder

    run, kind = served.run, served.kind
    served.lock = threading.Lock()
    if COMPLETIONS in served.routes:
        decoder = text_decoder(run.path, "serve")
        served.decoder = decoder
        if decoder.tokenizer is not None:
            from lmforge.tokenization.chat import load_template

            served.template = load_template(run.path, decoder.tokenizer)
        served.engine = Engine(decoder.model, decoder.decode, _token_text(decoder), max_batch, max_queue, threads,
                               wake, own_thread)
    if EMBEDDINGS in served.routes and kind == "lm":
        served.encoder = load_lm(run) if served.decoder is None else None
    if kind == "embeddings":
        served.vectors = LOADERS["embeddings"](run)
    if kind in ("task", "baseline"):
        served.task_run = LOADERS["task"](run)
    if kind == "seq2seq":
        from lmforge.inference.translation import Translator

        served.translator = Translator(LOADERS["seq2seq"](run))
    served.loaded = True


def _token_text(decoder):
    tokenizer = decoder.tokenizer
    if tokenizer is None:
        return lambda i: decoder.decode([i])
    specials = set(tokenizer.special_ids.values())   # once, not per generated token
    return lambda i: tokenizer.hf.id_to_token(i) if i in specials else tokenizer.decode([i])


# --- embeddings ---------------------------------------------------------------------------------------
def embed_texts(served: ServedModel, texts: list[str]) -> tuple[list[list[float]], int]:
    """(one L2-normalised vector per text, tokens read): mean word vectors of an embed run, or the mean of
    a model's last hidden states over the text's tokens."""
    if served.vectors is not None:
        return _mean_word_vectors(served.vectors, texts)
    model, tokenizer = (served.decoder.model, served.decoder.tokenizer) if served.decoder is not None else \
        (served.encoder.model, served.encoder.tokenizer)
    max_len = getattr(model.config, "max_seq_len", None) or 512
    out, used = [], 0
    with torch.inference_mode():
        for ids in tokenizer.encode_batch(texts):
            ids = ([tokenizer.cls_id] if served.encoder is not None and tokenizer.cls_id is not None else []) + ids
            ids = (ids or [tokenizer.eos_id])[:max_len]
            used += len(ids)
            hidden = model.hidden(torch.tensor([ids]))
            if isinstance(hidden, tuple):   # a recurrent model returns (outputs, state)
                hidden = hidden[0]
            out.append(_normalised(hidden[0].mean(dim=0).float().numpy()))   # mean over the (T, d) outputs
    return out, used


def _mean_word_vectors(vectors, texts: list[str]) -> tuple[list[list[float]], int]:
    index = vectors.index()
    out, used = [], 0
    for text in texts:
        rows = [index[w] for w in text.split() if w in index] or \
            [index[w.lower()] for w in text.split() if w.lower() in index]
        used += len(rows)
        mean = vectors.vectors[rows].mean(axis=0) if rows else np.zeros(vectors.dim, dtype=np.float32)
        out.append(_normalised(mean))
    return out, used


def _normalised(vector: np.ndarray) -> list[float]:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(float).tolist()


# --- scoring -----------------------------------------------------------------------------------------
def score_text(served: ServedModel, text: str) -> dict:
    """The log-probability (natural log) of `text` under the model, from the start of a document."""
    decoder = served.decoder
    if served.kind == "ngram":
        ngram = served.decoder.model.run   # the NgramRun behind the decoder
        scored = ngram.model.score_sentences(list(ngram.splitter.sentences(text.splitlines() or [""])))
        return {"logprob": float(scored.logp.sum()) * float(np.log(10)), "tokens": len(scored.logp),
                "unit": "words and </s>", "oov_tokens": int(scored.oov.sum()),
                "token_logprobs": [float(v) * float(np.log(10)) for v in scored.logp]}
    ids = decoder.encode(text)
    context = [decoder.eos_id, *ids] if ids[:1] != [decoder.eos_id] else ids
    max_len = decoder.model.max_context
    if max_len and len(context) > max_len:
        raise InputError(f"the text is {len(context)} tokens; this model scores at most {max_len}.")
    with torch.inference_mode():
        logits = decoder.model(torch.tensor([context]))[0].float()            # (T, V)
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        picked = logprobs.gather(1, torch.tensor(context[1:])[:, None]).squeeze(1)
    return {"logprob": float(picked.sum()), "tokens": len(context) - 1, "unit": "tokens",
            "token_logprobs": [float(v) for v in picked]}
