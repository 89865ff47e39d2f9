"""Run every benchmark one after another (never in parallel: on 2 cores they would distort each other).
    python bench/run_all.py                     # all of them
    python bench/run_all.py --only ngram_kenlm  # one (a script's name, without .py; repeatable)
"""

import argparse
import subprocess
import sys
from pathlib import Path

QUICKSTART_SHARDS = "/tmp/lmforge-bench-quickstart/data/tokens/bpe"
# (script, arguments); every figure of README.md and bench/README.md comes from one of these runs
SCRIPTS = [
    ("train_throughput.py", []), ("generate_speed.py", []), ("generate_batched.py", []),
    ("speculative_speed.py", []), ("tokenize_speed.py", []),
    ("char_quality.py", ["--variants", "adamw3e-3", "adamw1e-3", "muon"]),
    ("char_quality.py", ["--budget", "30", "--eval-every", "100", "--variants", "adamw3e-3", "adamw6e-3", "adamw1e-2"]),
    ("cli_defaults.py", ["--reference"]), ("quickstart_figures.py", []),
    ("cli_defaults.py", ["--shards", QUICKSTART_SHARDS, "--families", "gpt", "lstm", "gru", "rnn", "bert",
                         "--budgets", "60"]),
    ("lstm_reference.py", []), ("bert_mlm.py", []), ("rnn_memory.py", []), ("busy_machine.py", []),
    ("ngram_kenlm.py", []), ("word_vectors.py", []), ("warc_throughput.py", []), ("wiki_throughput.py", []),
    ("html_extraction_quality.py", []), ("wiki_multistream.py", []), ("wikitext_worst_case.py", []),
    ("finetune_speed.py", []), ("translation.py", []),      # translation: about 50 minutes, then Marian at its LR
    ("translation.py", ["--skip-train", "--marian-lr", "5e-4", "--skip-memory"]), ("translation_recipe.py", []),
    ("serve_load.py", []), ("chat_finetune.py", []),     # after speculative_speed.py: they reuse its runs
    ("default_commands.py", ["--tasks", "tag,qa"]),            # the documented defaults on unseen data: ~20 min
    ("default_commands.py", ["--tasks", "classify", "--sets", "zh", "--models", "fasttext,bilstm"]),
    ("default_commands.py", ["--tasks", "classify", "--sets", "sentiment,spam,sotu,langid", "--models", "fasttext"]),
    ("export_parity.py", []), ("gguf_speed.py", []), ("fsdp_memory.py", []), ("ray_throughput.py", []),
    ("applications.py", []),   # the longest last: about 3 hours
]

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", help="run only this script (name without .py)")
    args = parser.parse_args()
    here = Path(__file__).parent
    for script, extra in SCRIPTS:
        if args.only and script.removesuffix(".py") not in args.only:
            continue
        print(f"\n### {script} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, str(here / script), *extra], check=False, cwd=here)
