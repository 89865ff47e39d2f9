"""Chat fine-tuning by the documented command, and what it gives: reply perplexity on the held-out
conversations of ../shared/data/chatterbot_dialog (324 valid prompt/response pairs, 18 languages) for the
chat run and for the base run it started from (the same reply tokens), and greedy replies to a few
English prompts of the valid split.

    lmforge finetune --task chat --init RUN --data ../shared/data/chatterbot_dialog --out OUT
    lmforge eval --run OUT --json

The base runs are those of speculative_speed.py: `lmforge train --preset P --max-time T` on the Python-docs
corpus `lmforge quickstart` embeds (English only, BPE 4k), so most of the dialogue's languages are new to
them. CPU, the default thread count.

    python bench/chat_finetune.py [--presets small:600,tiny:240]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402
from speculative_speed import WORK, shards, trained  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chatterbot_dialog"


def english_valid(count: int = 6) -> list[dict]:
    """The first `count` English records of the valid split with distinct prompts."""
    seen, out = set(), []
    for line in (DATA / "valid.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["lang"] == "english" and record["prompt"] not in seen and len(out) < count:
            seen.add(record["prompt"])
            out.append(record)
    return out


def lmforge(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lmforge {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    return done.stdout


def replies(run: Path, prompts: list[str]) -> list[str]:
    """Greedy replies through the run's chat template (what `lmforge chat --temperature 0` prints)."""
    from lmforge.inference.decoding import generate
    from lmforge.inference.loading import text_decoder
    from lmforge.inference.sampling import SamplingConfig
    from lmforge.tokenization.chat import Message, load_template

    decoder = text_decoder(run, "chat")
    template = load_template(run, decoder.tokenizer)
    return [generate(decoder.model, template.prompt([Message("user", p)]), max_new_tokens=40,
                     sampling=SamplingConfig(temperature=0), seed=None, eos_id=template.end_id,
                     decode=decoder.decode).text.strip() for p in prompts]


def english_subset(run: Path) -> dict:
    """Reply perplexity and bits per byte of the chat run and its base on the English valid conversations
    (the base runs read only English in pre-training)."""
    from lmforge.applications.chat import ChatFields, read_conversations, reply_perplexity
    from lmforge.inference.loading import load_lm
    from lmforge.runs import open_run

    splits, _ = read_conversations(str(DATA), ChatFields())
    records = [json.loads(line) for line in (DATA / "valid.jsonl").read_text(encoding="utf-8").splitlines()]
    english = {(r["prompt"], r["response"]) for r in records if r["lang"] == "english"}
    conversations = [c for c in splits.valid if (c.messages[0].content, c.messages[1].content) in english]
    chat = open_run(run)
    return {"chat": reply_perplexity(load_lm(chat), conversations, "cpu"),
            "base": reply_perplexity(load_lm(open_run(Path(chat.contract.init_from))), conversations, "cpu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="small:600,tiny:240", help="base runs, PRESET:SECONDS")
    args = parser.parse_args()
    tokens = shards()
    print(f"chat fine-tuning on chatterbot_dialog ({machine()})")
    print(f"{'base run':>12} {'seconds':>8} {'reply ppl':>10} {'bits/byte':>10} {'base ppl':>10} "
          f"{'base bits/byte':>15}")
    results = []
    for item in args.presets.split(","):
        preset, seconds = item.split(":")
        base = trained(tokens, preset, float(seconds))
        out = WORK / "runs" / f"chat-{base.name}"
        start = time.perf_counter()
        lmforge("finetune", "--task", "chat", "--init", base, "--data", DATA, "--out", out, "--overwrite")
        took = time.perf_counter() - start
        report = json.loads(lmforge("eval", "--run", out, "--json"))
        print(f"{base.name:>12} {took:>8.0f} {report['reply_perplexity']:>10.2f} "
              f"{report['reply_bits_per_byte']:>10.3f} {report['base']['reply_perplexity']:>10.2f} "
              f"{report['base']['reply_bits_per_byte']:>15.3f}")
        english = english_subset(out)
        print(f"{'  English':>12} {'':>8} {english['chat']['reply_perplexity']:>10.2f} "
              f"{english['chat']['reply_bits_per_byte']:>10.3f} {english['base']['reply_perplexity']:>10.2f} "
              f"{english['base']['reply_bits_per_byte']:>15.3f}   ({english['chat']['conversations']} conversations)")
        report["english"] = english
        records = english_valid()
        answers = replies(out, [r["prompt"] for r in records])
        results.append({**report, "base_run": base.name, "seconds": took,
                        "replies": [{**r, "model": a} for r, a in zip(records, answers)]})
    for result in results:
        print(f"\ngreedy replies of chat-{result['base_run']} to English prompts of the valid split:")
        for r in result["replies"]:
            print(f"  user: {r['prompt']}\n  model: {r['model']}\n  (reference: {r['response']})")
    Path("/tmp/lmforge-bench-chat.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
