"""`lmforge export --format gguf`: a GPT run as one GGUF file for llama.cpp (architecture `llama`, the
byte-level BPE vocabulary as a `gpt2` tokenizer, the chat template of a chat run), written with the
`gguf` package and checked by running it in llama.cpp (`llama-cpp-python`): its greedy continuation of
a prompt must equal lmforge's, token for token.

llama.cpp rotates query/key pairs that sit next to each other; ours (and HF Llama's) rotates the first
half of a head against the second, so the query and key rows are reordered as llama.cpp's own HF
converter does. Its tokenizer splits text with the Llama 3 / DBRX pattern, which differs from ours
(cl100k's) only in runs of line breaks; the continuation check feeds both models the same ids."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmforge.inference.decoding import generate
from lmforge.inference.sampling import SamplingConfig
from lmforge.interop import parity
from lmforge.interop.hf_export import chat_template_jinja
from lmforge.models.convert import to_llama
from lmforge.tokenization.chat import load_template

CONTINUATION = 32   # tokens the check compares
PRE_TOKENIZER = "dbrx"   # llama.cpp's name for the cl100k-style split, without Llama 3's whole-word shortcut


def interleave_rope_rows(weight: Tensor, heads: int) -> Tensor:
    """Rows of a query/key projection reordered from half-split rotation pairs (i, i + d/2) to adjacent
    ones (2i, 2i + 1), per head."""
    rows, columns = weight.shape
    return weight.reshape(heads, 2, rows // heads // 2, columns).transpose(1, 2).reshape(rows, columns)


def gguf_tensors(model) -> dict[str, Tensor]:
    """The GPT's weights under llama.cpp's tensor names."""
    c, llama = model.config, to_llama(model)
    tensors = {"token_embd.weight": llama["model.embed_tokens.weight"],
               "output_norm.weight": llama["model.norm.weight"]}
    if not c.tie_embeddings:
        tensors["output.weight"] = llama["lm_head.weight"]
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(c.n_layers):
        for hf_name, ours in names.items():
            weight = llama[f"model.layers.{i}.{hf_name}.weight"]
            if ours in ("attn_q", "attn_k"):
                weight = interleave_rope_rows(weight, c.n_heads if ours == "attn_q" else c.n_kv_heads)
            tensors[f"blk.{i}.{ours}.weight"] = weight
    return tensors


def _vocabulary(tokenizer, vocab_size: int) -> tuple[list[str], list[int], list[str]]:
    """Tokens in id order (padded to the model's vocab_size), their GGUF types, and the merges."""
    import gguf

    spec = json.loads(tokenizer.path.read_text(encoding="utf-8"))
    by_id = {index: token for token, index in tokenizer.hf.get_vocab(with_added_tokens=True).items()}
    specials = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    tokens, types = [], []
    for index in range(vocab_size):
        if index in by_id:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.CONTROL if index in specials else gguf.TokenType.NORMAL)
        else:   # ids the model has and the tokenizer never produces
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    return tokens, types, merges


def write_gguf(source, out: Path, dtype: str) -> None:
    import gguf

    model, tokenizer, c = source.model, source.tokenizer, source.model.config
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(source.run.path.name)
    writer.add_context_length(c.max_seq_len)
    writer.add_embedding_length(c.d_model)
    writer.add_block_count(c.n_layers)
    writer.add_feed_forward_length(c.d_ff)
    writer.add_head_count(c.n_heads)
    writer.add_head_count_kv(c.n_kv_heads)
    writer.add_rope_dimension_count(c.head_dim)
    writer.add_rope_freq_base(c.rope_theta)
    writer.add_layer_norm_rms_eps(c.norm_eps)
    writer.add_vocab_size(c.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)
    tokens, types, merges = _vocabulary(tokenizer, c.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZER)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for role, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("pad", writer.add_pad_token_id)):
        if role in tokenizer.special_ids:
            add(tokenizer.special_ids[role])
    writer.add_add_bos_token(False)   # our documents are separated by <|eos|>; nothing is prepended
    if load_template(source.run.path, tokenizer) is not None:
        writer.add_chat_template(chat_template_jinja())
    for name, tensor in gguf_tensors(model).items():
        array = tensor.float().numpy()
        # llama.cpp keeps norms (1-D) in f32 whatever the file type
        writer.add_tensor(name, array.astype(np.float16) if dtype == "f16" and array.ndim > 1 else array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _our_greedy(model, prompt: list[int], n: int) -> list[int]:
    """What `lmforge generate --temperature 0` writes: the KV-cached greedy decoder, n tokens, no EOS stop."""
    return generate(model, prompt, max_new_tokens=n, sampling=SamplingConfig(temperature=0), seed=0, eos_id=None,
                    decode=lambda ids: "").token_ids


def _their_greedy(llm, prompt: list[int], n: int) -> tuple[list[int], float]:
    started, out = time.perf_counter(), []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        out.append(int(token))
        if len(out) == n:
            break
    return out, n / max(time.perf_counter() - started, 1e-9)


def _as_stored(model, dtype: str):
    """Our model with the weights the file holds (matrices rounded to f16 in an f16 file)."""
    if dtype == "f32":
        return model
    import copy

    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for param in rounded.parameters():
            if param.dim() > 1:
                param.copy_(param.half().float())
    return rounded


def teacher_forced(llm, model, prompt: list[int], continuation: list[int]) -> dict:
    """llama.cpp and ours read prompt + our greedy continuation: the largest logit difference, and the
    positions where llama.cpp's top token is not ours although our top-2 margin is wider than twice that
    difference (a narrower margin is a tie within the two runtimes' rounding: f16 weights, other kernels)."""
    ids = prompt + continuation
    llm.reset()
    llm.eval(ids)
    theirs = torch.from_numpy(np.array(llm.scores[: len(ids)], dtype=np.float32))
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0]
    theirs = theirs[:, : ours.size(-1)]
    gap = float((ours - theirs).abs().max())
    rows = range(len(prompt) - 1, len(ids) - 1)
    top2 = ours[list(rows)].topk(2).values
    margins = (top2[:, 0] - top2[:, 1]).tolist()
    differ = [i for i, row in enumerate(rows) if int(theirs[row].argmax()) != continuation[i]]
    return {"gap": gap, "real": [i for i in differ if margins[i] > 2 * gap],
            "ties": [i for i in differ if margins[i] <= 2 * gap]}


@contextmanager
def _quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for a while (native libraries write there past Python)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def export_gguf(source, out: Path, dtype: str, verify: bool, name: str) -> dict:
    write_gguf(source, out, dtype)
    summary = {"architecture": f"llama ({dtype})", "files": [name], "bytes": Path(out).stat().st_size}
    if not verify:
        return summary | {"verified": {"by": None, "passed": None, "skipped": "--no-verify"}}
    try:
        from llama_cpp import Llama
    except ImportError:
        return summary | {"verified": parity.skipped("llama-cpp-python", extra="llama")}
    c = source.model.config
    prompt = source.tokenizer.encode(parity.SAMPLE_TEXT)[: max(1, c.max_seq_len // 4)]
    n = min(CONTINUATION, c.max_seq_len - len(prompt))
    with _quiet_native_stderr():   # llama.cpp's C++ log lines
        # an f32 file is compared with an f32 KV cache (llama.cpp's default cache is f16)
        cache = {"type_k": 0, "type_v": 0} if dtype == "f32" else {}
        llm = Llama(model_path=str(out), n_ctx=c.max_seq_len, n_threads=2, n_batch=c.max_seq_len, verbose=False,
                    logits_all=True, **cache)
        theirs, rate = _their_greedy(llm, prompt, n)
        reference = _as_stored(source.model, dtype)
        ours = _our_greedy(reference, prompt, n)
        forced = teacher_forced(llm, reference, prompt, ours)
    agree = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    tokenized = llm.tokenize(parity.SAMPLE_TEXT.encode("utf-8"), add_bos=False, special=False)
    return summary | {"verified": {"by": f"llama-cpp-python {parity.version_of('llama-cpp-python')}",
                                   "passed": ours == theirs or not forced["real"],
                                   "greedy_tokens_equal": f"{agree}/{n}",
                                   "next_token_differs_beyond_ties": len(forced["real"]),
                                   "near_ties": len(forced["ties"]),
                                   "max_logit_diff": float(f"{forced['gap']:.3g}"),
                                   "tokenizer_equal": tokenized == source.tokenizer.encode(parity.SAMPLE_TEXT),
                                   "llama_cpp_tokens_per_s": round(rate, 1), "tokens": [1, len(prompt) + n]}}
