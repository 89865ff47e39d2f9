"""Translation runs end to end: `translate` (text or a file in, translations out, n-best, attention maps and
word alignments) and the evaluation of a split (sacreBLEU BLEU and chrF with signatures, per-sentence
scores, placeholders kept, teacher-forced loss, speed). A notebook calls `translate_texts(TranslateConfig(...))`
or `evaluate_translation(run, ...)`."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lmforge.data.pairs import is_pairs_dataset, read_pairs
from lmforge.devices import pick_device
from lmforge.errors import InputError
from lmforge.evaluation.attention import pharaoh, plot_attention, word_alignment, word_starts
from lmforge.evaluation.translation import corpus_scores, placeholder_report, sentence_scores
from lmforge.inference.translation import DecodeConfig, Translation, Translator, open_seq2seq


@dataclass
class TranslateConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """a translation run (train --model transformer, seq2seq-gru or seq2seq-lstm)"""
    texts: list[str] = field(default_factory=list, metadata={"positional": True, "nargs": "*", "metavar": "TEXT"})
    """sentences to translate"""
    input: Path | None = None
    """a file with one sentence per line (empty lines stay empty)"""
    attention_map: Path | None = field(default=None, metadata={"metavar": "PNG"})
    """a heat map of the attention of each translation (several sentences: PNG-1.png, PNG-2.png, ...)"""
    layer: int = -1
    """Transformer: the decoder layer whose cross-attention is mapped and aligned (-1: the last)"""
    heads: str = "mean"
    """Transformer: mean (of the layer's heads), all (a grid of every head), or a head number"""
    align: bool = False
    """print word alignments read from attention (source-target word numbers, Pharaoh i-j)"""
    int8: bool = False
    """int8 weights for CPU decoding"""
    device: str = "auto"
    """auto, cpu, cuda, mps"""

    def __post_init__(self) -> None:
        if self.heads not in ("mean", "all") and not self.heads.isdigit():
            raise ValueError(f"--heads {self.heads!r}: mean, all or a head number")


def read_sources(config: TranslateConfig) -> list[str]:
    if config.input is None:
        if not config.texts:
            raise InputError("translate: give the sentences to translate, or --input FILE.")
        return list(config.texts)
    try:
        return config.input.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{config.input}: cannot read sentences ({error}); pass a UTF-8 text file.") from None


def _layer_maps(weights: torch.Tensor, config: TranslateConfig) -> tuple[np.ndarray, list[str] | None, str]:
    """(maps, head titles, what they show) of the chosen layer: its head mean, every head, or one head."""
    layers, heads = weights.shape[:2]
    layer = config.layer if config.layer >= 0 else layers + config.layer
    if not 0 <= layer < layers:
        raise InputError(f"--layer {config.layer}: the model has {layers} decoder layer(s).")
    chosen = weights[layer]                                                  # (H, T, S)
    if config.heads == "all" and heads > 1:
        return chosen.numpy(), [f"head {h}" for h in range(heads)], f"layer {layer}"
    if config.heads.isdigit():
        if int(config.heads) >= heads:
            raise InputError(f"--heads {config.heads}: the model has {heads} head(s) per layer.")
        return chosen[int(config.heads)].numpy(), None, f"layer {layer}, head {config.heads}"
    return chosen.mean(dim=0).numpy(), None, f"layer {layer}" + (", mean of heads" if heads > 1 else "")


def _pieces(tokenizer, ids: list[int]) -> list[str]:
    """Each token's surface text as it joins the ones before (with the space that starts a word: a word-level
    tokenizer's decoder puts it between tokens, so a token's own text would not show it)."""
    texts = [tokenizer.decode(ids[:k]) for k in range(len(ids) + 1)]
    return [after[len(before):] if after.startswith(before) and len(after) > len(before)
            else tokenizer.decode([i]) or tokenizer.hf.id_to_token(i)
            for before, after, i in zip(texts, texts[1:], ids)]


def _map_path(path: Path, number: int, total: int) -> Path:
    return path if total == 1 else path.with_name(f"{path.stem}-{number}{path.suffix or '.png'}")


def explain(translator: Translator, translation: Translation, config: TranslateConfig, number: int,
            total: int) -> dict:
    """The attention map (PNG) and word alignment of one translation, as asked."""
    loaded, out = translator.loaded, {}
    weights = translator.attention(translation)                              # (L, H, T + 1, S)
    maps, titles, what = _layer_maps(weights, config)
    src_pieces = _pieces(loaded.src, translation.source_ids[:-1]) + ["</s>"]
    tgt_pieces = _pieces(loaded.tgt, translation.token_ids) + ["</s>"]
    if config.attention_map is not None:
        path = _map_path(config.attention_map, number, total)
        plot_attention(maps, src_pieces, tgt_pieces, path, f"{loaded.run.family}: {what}", titles)
        out["attention_map"] = str(path)
    if config.align:
        mean = maps.mean(axis=0) if maps.ndim == 3 else maps
        # EOS columns and rows are left out: they align no word
        pairs = word_alignment(mean[:-1, :-1], word_starts(src_pieces[:-1]), word_starts(tgt_pieces[:-1])) \
            if len(tgt_pieces) > 1 and len(src_pieces) > 1 else []
        out["alignment"] = pharaoh(pairs)
    return out


def translate_texts(config: TranslateConfig, decode: DecodeConfig) -> list[dict]:
    """Every source's translation (and its n-best, attention map and alignment when asked)."""
    device = pick_device(config.device)
    loaded = open_seq2seq(config.run, "translate", device)
    if (config.attention_map is not None or config.align) and not loaded.has_attention:
        raise InputError(f"{config.run}: trained with --attention none, so it has no attention to map or align; use "
                         "a run with attention (bahdanau, luong-dot, luong-general) or a transformer run.")
    sources = read_sources(config)
    translator = Translator(loaded, int8=config.int8)
    kept = [i for i, s in enumerate(sources) if s.strip()]
    found = translator.translate([sources[i] for i in kept], decode)
    results = [{"source": s, "text": "", "hypotheses": []} for s in sources]
    for number, (i, translation) in enumerate(zip(kept, found), start=1):
        results[i] = {"source": translation.source, "text": translation.text, "tokens": len(translation.token_ids),
                      "hypotheses": translation.hypotheses}
        if config.attention_map is not None or config.align:
            results[i].update(explain(translator, translation, config, number, len(kept)))
    return results


def _eval_pairs(run, data: Path | None, split: str, max_pairs: int | None) -> tuple[list[str], list[str], str]:
    source = Path(data or run.contract.corpus or "")
    if not is_pairs_dataset(source):
        raise InputError(f"{source}: not a parallel dataset (prepare --pairs output); pass --data DATASET.")
    pairs = list(read_pairs(source, split))[:max_pairs]
    if not pairs:
        raise InputError(f"{source}: the {split} split has no pairs; evaluate another --split.")
    return [s for s, _ in pairs], [t for _, t in pairs], str(source)


def _teacher_forced_loss(loaded, sources: list[str], references: list[str], device) -> float:
    from lmforge.inference.translation import source_ids
    from lmforge.tokenization.pairs import PairSplit
    from lmforge.training.seq2seq import SideIds, pair_nll

    max_len = loaded.model.config.max_seq_len
    src_ids, _ = source_ids(loaded.src, sources, max_len)
    tgt_ids = [ids[:max_len - 1] for ids in loaded.tgt.encode_batch(references)]
    split = _in_memory_split([s[:-1] for s in src_ids], tgt_ids, PairSplit)
    sums = pair_nll(loaded.model, split, np.arange(len(sources)), SideIds.of(loaded.src), SideIds.of(loaded.tgt),
                    4096, device)
    return sums.loss


def _in_memory_split(src: list[list[int]], tgt: list[list[int]], cls):
    offsets = np.zeros((len(src) + 1, 2), dtype=np.int64)
    offsets[1:, 0], offsets[1:, 1] = np.cumsum([len(s) for s in src]), np.cumsum([len(t) for t in tgt])
    flat = [np.asarray(sum(side, []), dtype=np.int64) for side in (src, tgt)]
    return cls(flat[0], flat[1], offsets)


def evaluate_translation(run, data: Path | None, split: str, decode: DecodeConfig, max_pairs: int | None = None,
                         device: str = "auto") -> dict:
    """BLEU/chrF (with signatures), placeholders kept, loss and speed of a translation run on a split."""
    device = pick_device(device)
    loaded = open_seq2seq(run.path, "eval", device)
    sources, references, source = _eval_pairs(run, data, split, max_pairs)
    started = time.perf_counter()
    found = Translator(loaded).translate(sources, decode)
    seconds = time.perf_counter() - started
    hypotheses = [t.text for t in found]
    scores = corpus_scores(hypotheses, references)
    per_sentence = sentence_scores(hypotheses, references)
    result = {"family": run.family, "objective": "seq2seq", "split": split, "data": source, "run": str(run.path),
              **scores, "loss": _teacher_forced_loss(loaded, sources, references, device),
              "placeholders": placeholder_report(sources, hypotheses).to_json(),
              "decode": {"beam": decode.beam, "length_penalty": decode.length_penalty,
                         "early_stopping": decode.early_stopping,
                         "max_length_ratio": decode.max_length_ratio},
              "seconds": seconds, "sentences_per_s": len(sources) / seconds,
              "tokens_per_s": sum(len(t.token_ids) + 1 for t in found) / seconds,
              "per_sentence": [{"source": s, "reference": r, "hypothesis": h, **score}
                               for s, r, h, score in zip(sources, references, hypotheses, per_sentence)]}
    result["perplexity"] = float(np.exp(result["loss"]))
    print(f"eval {split}: {len(sources):,} sentences translated in {seconds:.1f}s "
          f"({result['sentences_per_s']:.1f} sentences/s)", file=sys.stderr)
    return result


def round_trip(runs: list[Path], device: str = "cpu", temperature: float = 0.8):
    """`paraphrase(texts, seed) -> texts` through translation runs one after another (first hop sampled,
    so paraphrases vary; the others by beam search), for back-translation augmentation."""
    if len(runs) < 2:
        raise InputError(f"--augment-via {','.join(map(str, runs))}: give two translation runs, RUN1,RUN2 (there "
                         "and back).")
    translators = [Translator(open_seq2seq(run, "finetune --augment back-translate", device)) for run in runs]

    def paraphrase(texts: list[str], seed: int) -> list[str]:
        kept = [i for i, t in enumerate(texts) if t.strip()]
        current = [texts[i] for i in kept]
        for hop, translator in enumerate(translators):
            decode = DecodeConfig(beam=1, sample=True, temperature=temperature, seed=seed) if hop == 0 \
                else DecodeConfig(beam=4)
            current = [t.text for t in translator.translate(current, decode, warn=False)]
        out = list(texts)
        for i, text in zip(kept, current):
            out[i] = text or texts[i]
        print(f"back-translation: {len(kept):,} texts paraphrased through {' -> '.join(map(str, runs))}",
              file=sys.stderr)
        return out

    return paraphrase
