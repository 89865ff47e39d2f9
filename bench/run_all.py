"""Run every benchmark one after another (never in parallel: on 2 cores they would distort each other)."""

import subprocess
import sys
from pathlib import Path

SCRIPTS = ["train_throughput.py", "generate_speed.py", "generate_batched.py", "speculative_speed.py",
           "tokenize_speed.py", "char_quality.py", "cli_defaults.py", "lstm_reference.py", "bert_mlm.py",
           "rnn_memory.py", "busy_machine.py", "ngram_kenlm.py", "word_vectors.py", "applications.py",
           "finetune_speed.py", "warc_throughput.py", "wiki_throughput.py", "html_extraction_quality.py",
           "wiki_multistream.py", "wikitext_worst_case.py"]

if __name__ == "__main__":
    here = Path(__file__).parent
    for script in SCRIPTS:
        print(f"\n### {script}", flush=True)
        subprocess.run([sys.executable, str(here / script)], check=False, cwd=here)
