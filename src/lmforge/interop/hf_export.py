"""`lmforge export --format hf`: a run as a Hugging Face `transformers` model folder that
`from_pretrained` loads with no lmforge installed — config.json, model.safetensors, tokenizer.json,
tokenizer_config.json (with the chat template of a chat run), generation_config.json.

A GPT is `LlamaForCausalLM`; a BERT with learned positions and a GELU MLP is `BertForMaskedLM`
(post-norm) or `RobertaPreLayerNormForMaskedLM` (pre-norm); task runs on such a BERT become the
type's *ForSequenceClassification / *ForTokenClassification / *ForQuestionAnswering. Writing needs
no `transformers`; verifying does (interop/parity.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from lmforge.artifacts import write_json
from lmforge.models.convert import (
    hf_encoder_config,
    hf_encoder_type,
    llama_config,
    to_hf_encoder,
    to_hf_mlm_head,
    to_llama,
)
from lmforge.tokenization.chat import load_template
from lmforge.tokenization.specials import CHAT_END, CHAT_ROLES, ROLES
from lmforge.tokenization.tokenizer import Tokenizer

# HF's sequence classifiers put a tanh layer between the [CLS] state and the classifier, which ours lacks.
# It is set to tanh(x * s) / s with s small: within (s * x)^2 / 3 of the identity (below 1e-6 here), so
# logits agree to float precision. Further fine-tuning in HF starts from that scaled layer.
POOLER_SCALE = 1e-4
CLASS_NAMES = {"bert": "Bert", "roberta-prelayernorm": "RobertaPreLayerNorm"}
HEAD_CLASSES = {"classify": "ForSequenceClassification", "tag": "ForTokenClassification",
                "span": "ForQuestionAnswering"}


@dataclass
class HFModel:
    """What an HF folder holds: its config, tensors and how its tokenizer frames a text."""

    architecture: str
    config: dict
    tensors: dict[str, Tensor]
    encoder: bool = False
    extra: dict = field(default_factory=dict)


def llama_model(model, tokenizer: Tokenizer, chat: bool) -> HFModel:
    c = model.config
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
              "head_dim": c.head_dim, "torch_dtype": "float32", **llama_config(c), **_token_ids(tokenizer, chat)}
    tensors = to_llama(model)
    if c.tie_embeddings:   # stored once; HF ties the head to the embedding itself
        tensors.pop("lm_head.weight")
    return HFModel("LlamaForCausalLM", config, tensors)


def encoder_model(bert, tokenizer: Tokenizer, head=None, task=None) -> HFModel:
    """A BERT run (`head` None: masked-LM) or a task run's backbone and head."""
    model_type = hf_encoder_type(bert.config)
    pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    config = {"model_type": model_type, "torch_dtype": "float32", **hf_encoder_config(bert.config, pad_id),
              **_token_ids(tokenizer, chat=False)}
    tensors = to_hf_encoder(bert, pad_id)
    if head is None:
        config["architectures"] = [f"{CLASS_NAMES[model_type]}ForMaskedLM"]
        tensors |= to_hf_mlm_head(bert)
    else:
        config["architectures"] = [CLASS_NAMES[model_type] + HEAD_CLASSES[head.head_config.task]]
        tensors |= _head_tensors(head, model_type, bert.config.d_model)
        config |= _label_fields(head, task)
    return HFModel(config["architectures"][0], config, tensors, encoder=True)


def _head_tensors(model, model_type: str, width: int) -> dict[str, Tensor]:
    out = model.head.out
    task = model.head_config.task
    if task == "span":
        return {"qa_outputs.weight": out.weight.detach().clone(), "qa_outputs.bias": out.bias.detach().clone()}
    if task == "tag":
        return {"classifier.weight": out.weight.detach().clone(), "classifier.bias": out.bias.detach().clone()}
    near_identity = torch.eye(width) * POOLER_SCALE
    scaled = out.weight.detach() / POOLER_SCALE
    if model_type == "bert":
        return {"bert.pooler.dense.weight": near_identity, "bert.pooler.dense.bias": torch.zeros(width),
                "classifier.weight": scaled.clone(), "classifier.bias": out.bias.detach().clone()}
    return {"classifier.dense.weight": near_identity, "classifier.dense.bias": torch.zeros(width),
            "classifier.out_proj.weight": scaled.clone(), "classifier.out_proj.bias": out.bias.detach().clone()}


def _label_fields(model, task_run) -> dict:
    head = model.head_config
    names = task_run.labels.names if head.task != "span" else ["start", "end"]
    fields = {"num_labels": head.n_labels, "id2label": dict(enumerate(names)),
              "label2id": {name: i for i, name in enumerate(names)}, "classifier_dropout": 0.0}
    if head.task == "classify":
        fields["problem_type"] = "multi_label_classification" if head.multi_label else "single_label_classification"
    if task_run.thresholds is not None:   # HF has no per-label thresholds: kept for whoever applies the model
        fields["lmforge_thresholds"] = [float(t) for t in task_run.thresholds]
    return fields


def _token_ids(tokenizer: Tokenizer, chat: bool) -> dict:
    ids = {"bos_token_id": tokenizer.bos_id, "eos_token_id": tokenizer.eos_id, "pad_token_id": tokenizer.pad_id}
    if chat:   # a reply ends at <|end|>
        ids["eos_token_id"] = [tokenizer.hf.token_to_id(CHAT_END), tokenizer.eos_id]
    return {name: value for name, value in ids.items() if value is not None}


# --- tokenizer files -------------------------------------------------------------------------------
def chat_template_jinja() -> str:
    """Our chat layout (tokenization/chat.py) as the Jinja template `apply_chat_template` renders."""
    roles = " ".join(f"'{role}': '{token}'," for role, token in CHAT_ROLES.items())
    return ("{% set roles = {" + roles + "} %}{{ '" + ROLES["eos"] + "' }}"
            "{% for message in messages %}{{ roles[message['role']] + message['content'] + '" + CHAT_END + "' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '" + CHAT_ROLES["assistant"] + "' }}{% endif %}")


def _framed(spec: dict, tokenizer: Tokenizer) -> dict:
    """tokenizer.json with a post-processor that frames texts as our encoders read them:
    `[CLS] a [SEP]` and `[CLS] a [SEP] b [SEP]` with segments 0/1."""
    cls, sep = tokenizer.roles["cls"], tokenizer.roles["sep"]
    spec = dict(spec)
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": sep, "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": sep, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": sep, "type_id": 1}}],
        "special_tokens": {token: {"id": token, "ids": [tokenizer.hf.token_to_id(token)], "tokens": [token]}
                           for token in (cls, sep)}}
    return spec


def write_tokenizer(tokenizer: Tokenizer, run_dir: Path, out: Path, encoder: bool, max_len: int) -> None:
    if encoder:
        spec = _framed(json.loads(tokenizer.path.read_text(encoding="utf-8")), tokenizer)
        (out / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    else:   # the same bytes: a run imported back has the same tokenizer hash, so it reads the same shards
        shutil.copyfile(tokenizer.path, out / "tokenizer.json")
    names = {"bos": "bos_token", "eos": "eos_token", "pad": "pad_token", "unk": "unk_token"}
    if encoder:
        names |= {"cls": "cls_token", "sep": "sep_token", "mask": "mask_token"}
    specials = {key: tokenizer.roles[role] for role, key in names.items() if role in tokenizer.special_ids}
    inputs = ["input_ids", "token_type_ids", "attention_mask"] if encoder else ["input_ids", "attention_mask"]
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len,
              "clean_up_tokenization_spaces": False, "model_input_names": inputs, **specials}
    if load_template(run_dir, tokenizer) is not None:
        config["chat_template"] = chat_template_jinja()
    write_json(out / "tokenizer_config.json", config)
    write_json(out / "special_tokens_map.json", specials)


def write_model(model: HFModel, out: Path) -> None:
    from safetensors.torch import save_file

    save_file({name: t.contiguous() for name, t in model.tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    write_json(out / "config.json", model.config)
    generation = {k: v for k, v in model.config.items() if k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    if not model.encoder:
        write_json(out / "generation_config.json", generation)
