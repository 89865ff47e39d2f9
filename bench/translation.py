"""Machine translation side by side (CPU, en->de software messages from ../shared/data/gettext_ui_en_x):
1. lmforge's documented commands (`prepare --pairs`, `tokenizer train --joint`, `tokenize`, `train --model
   transformer|seq2seq-gru` with their defaults, `eval --split test`) at one wall-clock budget;
2. Hugging Face MarianMTModel trained from scratch on the same pair shards, the same batches (our token
   buckets, word dropout included), the same label-smoothed loss, optimizer settings and LR schedule, with
   as many parameters as our Transformer (a swish FFN 1.5x as wide as our SwiGLU), in a plain loop;
3. the RNN baselines: seq2seq-gru with Bahdanau attention (default) and with none;
4. decoding on the test split: our batched greedy and beam 5 against HF `generate` on the Marian model and
   CTranslate2 (float32 and int8) on the same Marian model converted with its own converter.
Validation loss (target NLL, no smoothing, the first 500 valid pairs) is measured for every model by
lmforge's `pair_nll`; BLEU/chrF by sacreBLEU with the same settings for every system.
    python bench/translation.py [--budget 600] [--out /tmp/lmforge-bench-mt] [--skip-train]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import machine

from lmforge.evaluation.translation import corpus_scores
from lmforge.runs import open_run
from lmforge.tokenization.pairs import read_pair_shards
from lmforge.tokenization.specials import BOS, EOS, UNK
from lmforge.training.config import TrainConfig
from lmforge.training.control import Budget
from lmforge.training.seq2seq import PairSampler, Seq2SeqConfig, SideIds, pair_nll

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gettext_ui_en_x"


def lmforge(*args: str) -> dict | None:
    """One CLI call in a fresh process (the user's command); its --json output when asked for."""
    result = subprocess.run([sys.executable, "-m", "lmforge", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lmforge {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout) if "--json" in args else None


def prepare(out: Path) -> Path:
    data = out / "data" / "en-de"
    if not data.exists():
        lmforge("prepare", "--pairs", str(DATA), "--filter", "tgt_lang=de", "--out", str(data))
        lmforge("tokenizer", "train", str(data), "--joint", "--vocab-size", "4000", "--out", str(out / "tok"))
        lmforge("tokenize", str(data), "--tokenizer", str(out / "tok"))
    return next((data / "pair-tokens").iterdir())


OUR_RUNS = {"transformer": [], "gru-bahdanau": ["--attention", "bahdanau"], "gru-none": ["--attention", "none"]}


def train_ours(shards: Path, out: Path, budget: float, names: list[str]) -> dict[str, Path]:
    paths = {}
    for name in names:
        extra = OUR_RUNS[name]
        path = out / "runs" / name
        model = "transformer" if name == "transformer" else "seq2seq-gru"
        if not path.exists():
            started = time.perf_counter()
            lmforge("train", "--data", str(shards), "--model", model, *extra, "--out", str(path),
                    "--max-time", str(budget))
            print(f"trained {name} in {time.perf_counter() - started:.0f}s wall", flush=True)
        paths[name] = path
    return paths


class MarianAsPairModel(torch.nn.Module):
    """HF Marian seen as our (src, src_mask, tgt_in) -> logits over our vocabulary: pads become Marian's <pad>
    (the last id) and the decoder starts from <pad>, as Marian (and CTranslate2's Marian loader) expect.
    <pad>'s logit is dropped: it is never a target, and with tied embeddings its output gradient would move the
    <pad> row away from zero, while Marian and CTranslate2 start the decoder from a zero embedding (with the
    row at zero HF's and CTranslate2's token log-probs agree to float precision; with it non-zero they differ)."""

    def __init__(self, marian, pad: int):
        super().__init__()
        self.marian, self.pad = marian, pad

    def forward(self, src, src_mask, tgt_in):
        src = src.masked_fill(~src_mask, self.pad)
        decoder_in = tgt_in.clone()
        decoder_in[:, 0] = self.pad
        logits = self.marian(input_ids=src, attention_mask=src_mask.long(), decoder_input_ids=decoder_in).logits
        return logits[..., :self.pad]


def marian_like(run_config: dict, vocab: int, eos: int):
    """A MarianMTModel with our Transformer's widths, depth, dropout and parameter count (+ <pad> row)."""
    from transformers import MarianConfig, MarianMTModel

    m = run_config["model"]
    d_ff = m["d_ff"] or 2 * m["d_model"]
    config = MarianConfig(vocab_size=vocab + 1, decoder_vocab_size=vocab + 1, d_model=m["d_model"],
                          encoder_layers=m["enc_layers"], decoder_layers=m["dec_layers"],
                          encoder_attention_heads=m["n_heads"], decoder_attention_heads=m["n_heads"],
                          encoder_ffn_dim=3 * d_ff // 2, decoder_ffn_dim=3 * d_ff // 2,
                          activation_function="swish", dropout=m["dropout"], attention_dropout=m["attn_dropout"],
                          activation_dropout=0.0, max_position_embeddings=m["max_seq_len"] + 2,
                          pad_token_id=vocab, decoder_start_token_id=vocab, eos_token_id=eos,
                          forced_eos_token_id=None, share_encoder_decoder_embeddings=True,
                          tie_word_embeddings=True, scale_embedding=True)
    torch.manual_seed(0)
    return MarianMTModel(config)


def train_marian(shards: Path, our_run: Path, path: Path, budget: float, lr: float | None) -> dict:
    """The plain loop: our sampler's batches, our schedule (Budget), AdamW with our groups' decay rule; at our
    run's peak LR unless `lr` is given."""
    config = open_run(our_run).sections
    train_cfg = TrainConfig(**{k: v for k, v in config["train"].items() if k in TrainConfig.__dataclass_fields__}
                            | {"max_time": budget} | ({"lr": lr} if lr else {}))
    options = Seq2SeqConfig(**config.get("seq2seq", {}))
    pair_shards = read_pair_shards(shards)
    src_tok, tgt_tok = pair_shards.tokenizers()
    src_ids, tgt_ids = SideIds.of(src_tok), SideIds.of(tgt_tok)
    vocab = src_tok.vocab_size
    marian = marian_like(config, vocab, tgt_ids.eos)
    model = MarianAsPairModel(marian, vocab).train()
    n_params = sum(p.numel() for p in marian.parameters())
    sampler = PairSampler(pair_shards.split("train"), options, config["model"]["max_seq_len"],
                          train_cfg.batch_size, 1, 0, 1, train_cfg.seed, src_ids, tgt_ids, show=False)
    decay = [p for p in marian.parameters() if p.dim() >= 2]
    no_decay = [p for p in marian.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": train_cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=train_cfg.lr,
                                  betas=(train_cfg.beta1, train_cfg.beta2))
    schedule = Budget(train_cfg, 0.0)
    curve, step, train_time, tokens = [], 0, 0.0, 0
    next_eval = budget / 10
    valid = pair_shards.split("valid")
    src_len, tgt_len = valid.lengths()   # the pairs PairValidation scores for our runs
    max_len = config["model"]["max_seq_len"]
    val_idx = np.flatnonzero((src_len + 1 <= max_len) & (tgt_len + 1 <= max_len))[:options.val_pairs]
    while train_time < budget:
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = train_cfg.lr * schedule.lr_factor(step, train_time)
        batch = sampler.micro_batch(step, 0)
        logits = model(batch.src, batch.src_mask, batch.tgt_in)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=-100,
                                                 label_smoothing=options.label_smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(marian.parameters(), train_cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += batch.n_tokens
        train_time += time.perf_counter() - started
        if train_time >= next_eval or train_time >= budget:
            next_eval += budget / 10
            sums = pair_nll(model, valid, val_idx, src_ids, tgt_ids, options.batch_tokens, "cpu")
            curve.append({"step": step, "train_time": train_time, "val_loss": sums.loss})
            print(f"marian step {step} {train_time:.0f}s val {sums.loss:.3f}", flush=True)
    pad_row = float(marian.model.shared.weight[vocab].norm())   # 0: the decoder CTranslate2 rebuilds is this one
    print(f"marian <pad> embedding row norm after training: {pad_row:g}", flush=True)
    marian.save_pretrained(path)
    save_marian_tokenizer(shards, path)
    return {"params": n_params, "steps": step, "tokens_per_s": tokens / train_time, "curve": curve,
            "val_loss": curve[-1]["val_loss"], "path": path, "pad_row_norm": pad_row}


def save_marian_tokenizer(shards: Path, path: Path) -> None:
    """Our tokenizer as a PreTrainedTokenizerFast with <pad> appended last (CTranslate2's Marian vocabulary)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer_file = next(shards.glob("src.tokenizer.json"))
    ours = read_pair_shards(shards).tokenizers()[0]
    unk = UNK if ours.hf.token_to_id(UNK) is not None else EOS
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), eos_token=EOS, unk_token=unk, bos_token=BOS)
    fast.add_special_tokens({"pad_token": "<pad>"})
    fast.save_pretrained(path)


def test_pairs(out: Path) -> tuple[list[str], list[str]]:
    with gzip.open(out / "data" / "en-de" / "pairs" / "test.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    return [r["src"] for r in rows], [r["tgt"] for r in rows]


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def source_tokens(shards: Path, sources: list[str]) -> tuple[list[list[int]], object]:
    src_tok = read_pair_shards(shards).tokenizers()[0]
    return [[*ids[:255], src_tok.eos_id] for ids in src_tok.encode_batch(sources)], src_tok   # cut as ours


def decode_hf(marian_path: Path, shards: Path, sources, batch: int = 32, beams: int = 1) -> tuple[float, list]:
    from transformers import MarianMTModel

    model = MarianMTModel.from_pretrained(marian_path).eval()
    longest = model.config.max_position_embeddings - 3   # our max_seq_len - 1: the cap our decoder has too
    ids, tok = source_tokens(shards, sources)
    pad = tok.vocab_size
    outputs, started = [], time.perf_counter()
    with torch.inference_mode():
        for chunk in batches(ids, batch):
            width = max(map(len, chunk))
            x = torch.full((len(chunk), width), pad, dtype=torch.long)
            for row, s in enumerate(chunk):
                x[row, :len(s)] = torch.tensor(s)
            out = model.generate(input_ids=x, attention_mask=(x != pad).long(), num_beams=beams, do_sample=False,
                                 max_new_tokens=min(2 * width + 10, longest), suppress_tokens=[pad])
            outputs += [[t for t in row.tolist()[1:] if t not in (pad, tok.eos_id)] for row in out]
    return time.perf_counter() - started, [tok.decode(o) for o in outputs], sum(len(o) + 1 for o in outputs)


def decode_ct2(marian_path: Path, shards: Path, sources, quantization: str, batch: int = 32,
               beams: int = 1) -> tuple[float, list]:
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    target = marian_path.with_name(f"{marian_path.name}-ct2-{quantization}")
    if not target.exists():
        TransformersConverter(str(marian_path)).convert(str(target), quantization=quantization)
    translator = ctranslate2.Translator(str(target), device="cpu", inter_threads=1,
                                        intra_threads=torch.get_num_threads())
    ids, tok = source_tokens(shards, sources)
    longest = json.loads((marian_path / "config.json").read_text())["max_position_embeddings"] - 3
    tokens = [[tok.hf.id_to_token(i) for i in s] for s in ids]
    outputs, started = [], time.perf_counter()
    for chunk in batches(tokens, batch):
        width = max(map(len, chunk))
        results = translator.translate_batch(chunk, beam_size=beams, max_batch_size=batch,
                                             max_decoding_length=min(2 * width + 10, longest) + 1)  # + EOS
        outputs += [[tok.hf.token_to_id(t) for t in r.hypotheses[0]] for r in results]
    return (time.perf_counter() - started, [tok.decode([i for i in o if i is not None]) for o in outputs],
            sum(len(o) + 1 for o in outputs))


def peak_rss_gb(*args: str) -> float:
    """Peak resident memory of one `lmforge` command (GNU time's %M, KiB)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "lmforge", *args],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lmforge {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return int(result.stderr.strip().splitlines()[-1]) / 2**20


def memory_at_scale(out: Path, steps: int = 100) -> dict:
    """Peak RSS of 100 training steps on the train split and on it 10 times over (pair shards are memory-mapped,
    so memory should not grow with the corpus)."""
    sizes = {}
    for copies in (1, 10):
        data = out / f"scale-{copies}x"
        if not data.exists():
            source = out / f"scale-{copies}x-src"
            source.mkdir(parents=True, exist_ok=True)
            for split in ("train", "valid", "test"):
                with gzip.open(out / "data" / "en-de" / "pairs" / f"{split}.jsonl.gz", "rt") as f:
                    rows = [line for line in f]
                (source / f"{split}.jsonl").write_text("".join(rows * (copies if split == "train" else 1)))
            lmforge("prepare", "--pairs", str(source), "--dedup", "false", "--near-dedup", "false",
                    "--out", str(data))
            lmforge("tokenize", str(data), "--tokenizer", str(out / "tok"))
        shards = next((data / "pair-tokens").iterdir())
        meta = json.loads((shards / "meta.json").read_text())
        run = out / "runs" / f"scale-{copies}x"
        shutil.rmtree(run, ignore_errors=True)
        sizes[f"{copies}x"] = {"train_pairs": meta["splits"]["train"]["pairs"],
                               "peak_rss_gb": peak_rss_gb("train", "--data", str(shards), "--model", "transformer",
                                                          "--out", str(run), "--max-steps", str(steps))}
    return sizes


def val_curve(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return [{"step": r["step"], "train_time": r["train_time"], "val_loss": r["val_loss"]}
            for r in rows if "val_loss" in r]


def overtakes(curves: dict) -> float | None:
    """The first evaluation time from which the Transformer's val loss stays below the Bahdanau GRU's, the
    GRU's curve read at the same time (linear between its evaluations: the two runs' evaluation times differ
    by fractions of a second, and the GRU's previous evaluation would be one interval stale)."""
    tfm, gru = curves["transformer"], curves["gru-bahdanau"]
    times, losses = [r["train_time"] for r in gru], [r["val_loss"] for r in gru]
    below = [r["val_loss"] < np.interp(r["train_time"], times, losses) for r in tfm]
    for i, row in enumerate(tfm):
        if all(below[i:]):
            return row["train_time"]
    return None


def evaluate_ours(runs: dict[str, Path], curves: dict, limit: list[str]) -> dict:
    """`lmforge eval --split test` of each run, greedy and beam 5 (the documented command), and beam 5 with
    --early-stopping."""
    systems = {}
    for name, path in runs.items():
        params = lmforge("summary", "--run", str(path), "--json")["params"]
        for label, decode in (("beam 1", ["--beam", "1"]), ("beam 5", ["--beam", "5"]),
                              ("beam 5 early", ["--beam", "5", "--early-stopping"])):
            result = lmforge("eval", "--run", str(path), "--split", "test", *decode, *limit, "--json")
            systems[f"lmforge {name} {label}"] = {
                "bleu": result["bleu"], "chrf": result["chrf"], "sentences_per_s": result["sentences_per_s"],
                "tokens_per_s": result["tokens_per_s"], "val_loss": curves[name][-1]["val_loss"], "params": params,
                "steps": curves[name][-1]["step"], "signature": result["chrf_signature"]}
    return systems


def decode_references(marian_dir: Path, shards: Path, marian: dict, sources, references) -> tuple[dict, dict]:
    """HF generate and CTranslate2 (float32, int8) on the trained Marian model: scores, speed, hypotheses."""
    decoders = {
        "HF Marian generate beam 1": lambda: decode_hf(marian_dir, shards, sources),
        "HF Marian generate beam 5": lambda: decode_hf(marian_dir, shards, sources, beams=5),
        "CTranslate2 float32 beam 1": lambda: decode_ct2(marian_dir, shards, sources, "float32"),
        "CTranslate2 int8 beam 1": lambda: decode_ct2(marian_dir, shards, sources, "int8"),
        "CTranslate2 float32 beam 5": lambda: decode_ct2(marian_dir, shards, sources, "float32", beams=5)}
    systems, hypotheses = {}, {}
    for label, decode in decoders.items():
        seconds, hypotheses[label], tokens = decode()
        scores = corpus_scores(hypotheses[label], references)
        systems[label] = {"bleu": scores["bleu"], "chrf": scores["chrf"], "sentences_per_s": len(sources) / seconds,
                          "tokens_per_s": tokens / seconds, "val_loss": marian["val_loss"],
                          "params": marian["params"], "steps": marian["steps"]}
    return systems, hypotheses


def print_report(report: dict) -> None:
    systems = report["systems"]
    print(f"\n{'system':34} {'params':>9} {'steps':>6} {'val loss':>8} {'BLEU':>6} {'chrF':>6} {'sent/s':>7} "
          f"{'tok/s':>7}")
    for label, row in systems.items():
        print(f"{label:34} {row['params']:>9,} {row['steps']:>6} {row['val_loss']:>8.3f} {row['bleu']:>6.2f} "
              f"{row['chrf']:>6.2f} {row['sentences_per_s']:>7.1f} {row['tokens_per_s']:>7.0f}")
    ours, hf = systems["lmforge transformer beam 1"], systems["HF Marian generate beam 1"]
    ct2 = systems["CTranslate2 float32 beam 1"]
    print(f"greedy tokens/s, lmforge transformer / HF generate: {ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x, "
          f"/ CTranslate2 float32: {ours['tokens_per_s'] / ct2['tokens_per_s']:.2f}x")
    print(f"greedy decoding lmforge/HF generate: {ours['sentences_per_s'] / hf['sentences_per_s']:.2f}x sentences/s; "
          f"beam 5 / greedy (lmforge transformer): "
          f"{systems['lmforge transformer beam 5']['sentences_per_s'] / ours['sentences_per_s']:.2f}x "
          f"({systems['lmforge transformer beam 5 early']['sentences_per_s'] / ours['sentences_per_s']:.2f}x with "
          "--early-stopping); "
          f"CTranslate2 float32 = HF greedy on {report['ct2_float_same_as_hf_greedy']:.0%} of sentences")
    gru, none = systems.get("lmforge gru-bahdanau beam 5"), systems.get("lmforge gru-none beam 5")
    if gru and none:
        print(f"GRU with Bahdanau attention - without: chrF {gru['chrf'] - none['chrf']:+.2f}, "
              f"BLEU {gru['bleu'] - none['bleu']:+.2f} (beam 5)")
    crossover = report["transformer_overtakes_gru_at_s"]
    if not gru:
        when = "no GRU trained"
    elif crossover is None:
        when = "not within the budget"
    else:
        when = f"from {crossover:.0f} s on"
    print(f"Transformer val loss below the Bahdanau GRU's: {when}; HF Marian (peak LR {report['marian_lr']:g}) "
          f"trained at {report['marian_tokens_per_s']:,.0f} tokens/s")
    if report["memory"]:
        print("training memory (100 steps, transformer):", ", ".join(
            f"{k}: {v['train_pairs']:,} pairs, {v['peak_rss_gb']:.2f} GB" for k, v in report["memory"].items()))
    for name, curve in report["curves"].items():
        print(f"  {name:14} " + " ".join(f"{r['train_time']:.0f}s:{r['val_loss']:.2f}" for r in curve))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=600, help="training seconds per model")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lmforge-bench-mt"))
    parser.add_argument("--skip-train", action="store_true", help="reuse the runs already in --out")
    parser.add_argument("--test-pairs", type=int, default=None, help="translate only the first N test pairs")
    parser.add_argument("--marian-lr", type=float, default=None,
                        help="Marian's peak LR (default: our Transformer's, 5e-4 for `tiny`); post-norm Marian at "
                             "2e-3 with 3%% warm-up learned to ignore the source")
    parser.add_argument("--models", nargs="+", choices=list(OUR_RUNS), default=list(OUR_RUNS),
                        help="lmforge models to train (the Transformer always; HF Marian is trained beside them)")
    parser.add_argument("--reprint", action="store_true",
                        help="print the report saved in --out again (the crossover recomputed from its curves)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the 1x/10x memory measurement")
    args = parser.parse_args()
    name = f"marian-lr{args.marian_lr:g}" if args.marian_lr else "marian"
    if args.reprint:
        report = json.loads((args.out / f"report-{name}.json").read_text())
        report["transformer_overtakes_gru_at_s"] = (overtakes(report["curves"]) if "gru-bahdanau" in
                                                    report["curves"] else None)
        print_report(report)
        return
    if "transformer" not in args.models:
        parser.error("--models must include transformer: HF Marian is sized and scheduled from it")
    torch.set_num_threads(2)
    print(f"machine: {machine()}; budget {args.budget:.0f}s per model", flush=True)
    shards = prepare(args.out)
    runs = train_ours(shards, args.out, args.budget, args.models)
    marian_dir, saved = args.out / name, args.out / f"{name}.json"
    if args.skip_train and saved.exists():
        marian = json.loads(saved.read_text())
    else:
        marian = train_marian(shards, runs["transformer"], marian_dir, args.budget, args.marian_lr)
        marian["path"] = str(marian["path"])
        saved.write_text(json.dumps(marian))
    sources, references = test_pairs(args.out)
    sources, references = sources[:args.test_pairs], references[:args.test_pairs]
    limit = ["--max-pairs", str(args.test_pairs)] if args.test_pairs else []
    curves = {name: val_curve(path) for name, path in runs.items()}
    report = {"machine": machine(), "budget_s": args.budget, "test_sentences": len(sources),
              "systems": evaluate_ours(runs, curves, limit)}
    references_systems, hypotheses = decode_references(marian_dir, shards, marian, sources, references)
    report["systems"] |= references_systems
    hf, ct2 = hypotheses["HF Marian generate beam 1"], hypotheses["CTranslate2 float32 beam 1"]
    report["ct2_float_same_as_hf_greedy"] = sum(a == b for a, b in zip(hf, ct2)) / len(hf)
    report["transformer_overtakes_gru_at_s"] = overtakes(curves) if "gru-bahdanau" in curves else None
    report["curves"] = curves | {"marian": marian["curve"]}
    report["marian_tokens_per_s"] = marian["tokens_per_s"]
    report["marian_lr"] = args.marian_lr or open_run(runs["transformer"]).sections["train"]["lr"]
    report["memory"] = {} if args.skip_memory else memory_at_scale(args.out)
    (args.out / f"report-{name}.json").write_text(json.dumps(report | {"hypotheses": hypotheses}, indent=1))
    print_report(report)


if __name__ == "__main__":
    main()
