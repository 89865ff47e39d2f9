"""`lmforge import`: a local Hugging Face Llama-layout folder (config.json, safetensors weights,
tokenizer.json) as an lmforge GPT run that generate, eval, chat, serve and finetune --init take.
Nothing is unpickled: a folder with only pytorch_model.bin is refused with how to convert it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from lmforge.artifacts import read_json, save_weights
from lmforge.errors import InputError
from lmforge.models.convert import from_llama
from lmforge.models.gpt import GPT, GPTConfig
from lmforge.runs import RunConfig, source_path, write_run
from lmforge.tokenization.specials import ROLES
from lmforge.tokenization.tokenizer import Tokenizer, write_roles

INDEX = "model.safetensors.index.json"
TOKEN_FIELDS = {"bos": "bos_token", "eos": "eos_token", "pad": "pad_token", "unk": "unk_token"}


@dataclass
class Imported:
    model: GPT
    config: dict
    dtype: str


def _unsupported(config: dict, path: Path) -> None:
    """Llama variants our GPT does not compute (the import would load but give other logits)."""
    # transformers 4 writes rope_scaling, 5 rope_parameters; either may name a scaled RoPE
    scalings = [config.get("rope_scaling") or {}, config.get("rope_parameters") or {}]
    rope_type = next((kind for s in scalings if (kind := s.get("rope_type", s.get("type", "default"))) != "default"),
                     "default")
    hidden, heads = config.get("hidden_size", 0), config.get("num_attention_heads", 1)
    problems = [(config.get("hidden_act", "silu") != "silu", f"hidden_act {config.get('hidden_act')!r} (ours: silu)"),
                (rope_type != "default", f"RoPE scaling {rope_type!r} (ours: plain RoPE)"),
                (bool(config.get("attention_bias")), "attention biases"),
                (bool(config.get("mlp_bias")), "MLP biases"),
                (config.get("head_dim") not in (None, hidden // max(heads, 1)),
                 f"head_dim {config.get('head_dim')} != hidden_size / num_attention_heads")]
    for bad, what in problems:
        if bad:
            raise InputError(f"{path}: this Llama uses {what}, which lmforge's GPT does not compute; "
                             "it cannot be imported as is.")


def gpt_config(config: dict, path: Path) -> GPTConfig:
    layout = config.get("model_type")
    if layout != "llama" and "LlamaForCausalLM" not in (config.get("architectures") or []):
        raise InputError(f"{path}: a {layout or 'model of unknown type'} model; lmforge imports the Hugging Face "
                         "Llama layout (model_type llama, LlamaForCausalLM).")
    _unsupported(config, path)
    rope_theta = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta", 10_000.0))
    try:
        return GPTConfig(vocab_size=config["vocab_size"], max_seq_len=config["max_position_embeddings"],
                         n_layers=config["num_hidden_layers"], n_heads=config["num_attention_heads"],
                         n_kv_heads=config.get("num_key_value_heads"), d_model=config["hidden_size"],
                         d_ff=config["intermediate_size"], rope_theta=float(rope_theta),
                         norm_eps=config.get("rms_norm_eps", 1e-6),
                         tie_embeddings=bool(config.get("tie_word_embeddings", False)))
    except KeyError as missing:
        raise InputError(f"{path}: no {missing} entry; not a complete Llama config.") from None
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = [folder / "model.safetensors"]
    if (folder / INDEX).exists():
        index = read_json(folder / INDEX, "safetensors index")
        files = [folder / name for name in sorted(set(index.get("weight_map", {}).values()))]
    if not all(f.exists() for f in files):
        pickled = (folder / "pytorch_model.bin").exists()
        why = " (only pytorch_model.bin, which lmforge never unpickles)" if pickled else ""
        raise InputError(f"{folder}: no safetensors weights{why}; save the model with "
                         "`model.save_pretrained(folder, safe_serialization=True)`.")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors |= load_file(str(file))
    return tensors


def load_llama(folder: Path) -> Imported:
    """The folder's model as a GPT (float32), checked against its config."""
    config_path = folder / "config.json"
    if not config_path.exists():
        raise InputError(f"{folder}: not a Hugging Face model folder (no config.json).")
    config = read_json(config_path, "model config")
    gpt_cfg = gpt_config(config, config_path)
    tensors = read_tensors(folder)
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.") if tensors else "?"
    model = GPT(gpt_cfg)
    try:
        state = from_llama(tensors, gpt_cfg)
        model.load_state_dict({name: t.float() for name, t in state.items()}, strict=True)
    except (KeyError, RuntimeError) as error:
        first = str(error).strip("'\"").splitlines()[0][:160]
        raise InputError(f"{folder}: the weights do not match config.json ({first}).") from None
    return Imported(model.eval(), config, dtype)


def _token_text(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def tokenizer_roles(folder: Path) -> dict[str, str]:
    """role -> token text of the folder's own special tokens, where they are not ours."""
    config_path = folder / "tokenizer_config.json"
    config = read_json(config_path, "tokenizer config") if config_path.exists() else {}
    roles = {role: _token_text(config.get(key)) for role, key in TOKEN_FIELDS.items()}
    return {role: token for role, token in roles.items() if token and token != ROLES[role]}


def import_llama(folder: Path, out: Path, overwrite: bool = False) -> tuple[Imported, Path]:
    """Write the run; (what was imported, the run directory)."""
    from lmforge.interop.files import staged

    folder, out = Path(folder), Path(out)
    imported = load_llama(folder)
    if not (folder / "tokenizer.json").exists():
        raise InputError(f"{folder}: no tokenizer.json (a fast tokenizer); save one with "
                         "`AutoTokenizer.from_pretrained(...).save_pretrained(folder)`.")
    with staged(out, overwrite) as tmp:
        shutil.copyfile(folder / "tokenizer.json", tmp / "tokenizer.json")
        roles = tokenizer_roles(folder)
        if roles:
            write_roles(tmp, roles)
        tokenizer = Tokenizer(tmp)
        if tokenizer.vocab_size > imported.model.config.vocab_size:
            raise InputError(f"{folder}/tokenizer.json: {tokenizer.vocab_size} tokens, more than the model's "
                             f"vocab_size {imported.model.config.vocab_size}.")
        save_weights(imported.model, tmp / "model.safetensors")
        contract = RunConfig("gpt", "imported", "causal_lm", "", tokenizer.sha256, kind="lm")
        write_run(tmp, contract, {"model": imported.model.config,
                                  "import": {"source": source_path(folder), "format": "hf-llama",
                                             "dtype": imported.dtype}})
    return imported, out


def import_run(folder: Path, out: Path, overwrite: bool = False, verify: bool = True) -> dict:
    """Import, then run the HF model and the new run on the same tokens (`transformers` must be installed
    to check; otherwise that is said)."""
    from lmforge.inference.loading import load_lm
    from lmforge.interop import parity
    from lmforge.runs import open_run

    imported, out = import_llama(folder, out, overwrite)
    loaded = load_lm(open_run(out))
    summary = {"source": str(Path(folder).resolve()), "out": str(out), "architecture": "LlamaForCausalLM",
               "params": loaded.model.num_params(), "dtype": imported.dtype,
               "special_tokens": {role: loaded.tokenizer.roles[role] for role in ("bos", "eos", "pad", "unk")
                                  if role in loaded.tokenizer.special_ids}}
    if not verify:
        return summary | {"verified": {"by": None, "passed": None, "skipped": "--no-verify"}}
    try:
        import transformers  # noqa: F401
    except ImportError:
        return summary | {"verified": parity.skipped("transformers")}
    sample = parity.sample_inputs(loaded.tokenizer, loaded.model.config.max_seq_len, encoder=False)
    theirs = parity.hf_outputs(folder, "LlamaForCausalLM", sample, encoder=False)
    with torch.no_grad():
        ours = loaded.model(sample.ids)
    return summary | {"verified": parity.record("transformers", parity.max_difference(ours, theirs), sample)}
