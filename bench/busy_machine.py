"""Training speed on a busy machine: tiny GPT steps (batch 16 x 128) with 2 threads, 1 thread and
`lmforge train`'s default (which measures competing load at start-up), idle and with one other
busy process (a Python spin loop) on the same cores.
    python bench/busy_machine.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

STEP = """
import os, sys, time, torch
from lmforge.models.gpt import GPT, GPTConfig
from lmforge.training.batches import LMBatch
from lmforge.training.objectives import TrainingView, causal_lm
from lmforge.training.threads import default_threads
threads = int(sys.argv[1]) if sys.argv[1] != "default" else default_threads(1)[0]
torch.set_num_threads(threads)
torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=256, max_seq_len=128))
net, opt = TrainingView(model, causal_lm), torch.optim.AdamW(model.parameters(), 1e-3)
x, y = torch.randint(0, 256, (16, 128)), torch.randint(0, 256, (16, 128))
for i in range(23):
    if i == 3:
        start = time.perf_counter()
    net(LMBatch(x, y)).backward()
    opt.step()
    opt.zero_grad()
print(json.dumps({"threads": threads, "seconds_per_step": (time.perf_counter() - start) / 20}))
""".replace("import os,", "import json, os,")


def step_time(threads: str) -> dict:
    out = subprocess.run([sys.executable, "-c", STEP, threads], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main():
    for busy in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        time.sleep(1.0 if busy else 0.0)
        try:
            for threads in ("2", "1", "default"):
                row = step_time(threads)
                print(json.dumps({"competing_busy_process": busy, "setting": threads, **row}), flush=True)
        finally:
            if spinner:
                spinner.kill()


if __name__ == "__main__":
    main()
