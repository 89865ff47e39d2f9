"""EleutherAI's lm-evaluation-harness over any generating lmforge run (a decoder language model of any
family, or an n-gram model): `LmforgeLM` implements the harness's model interface — log-likelihood of
a continuation, rolling log-likelihood of a whole text, generation until a stop string — through the
decoder protocol, so `lm_eval` tasks score lmforge models as they score HF ones. `run_harness` runs the
tasks of a local task YAML (its dataset read from local files: nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from lmforge.errors import InputError
from lmforge.inference.decoding import generate_batch
from lmforge.inference.loading import TextDecoder, text_decoder
from lmforge.inference.sampling import SamplingConfig


class DecoderScorer:
    """Log-probabilities of token ids under a run's decoder, in windows the model can read."""

    def __init__(self, decoder: TextDecoder):
        self.decoder, self.model = decoder, decoder.model
        self.window = decoder.model.max_context   # None: a recurrent or n-gram model reads any length

    @torch.no_grad()
    def token_logprobs(self, ids: list[int], first: int) -> tuple[list[float], list[bool]]:
        """log p(ids[j] | ids[:j]) and whether ids[j] was the top token, for j in [first, len(ids)); each
        target is read with as much preceding context as the window holds (the last window slides)."""
        logprobs, greedy = [], []
        start = first
        while start < len(ids):
            end = len(ids) if self.window is None else min(len(ids), start + self.window)
            begin = 0 if self.window is None else max(0, end - 1 - self.window)
            inputs = torch.tensor([ids[begin:end - 1]])
            state = self.model.new_state(1, inputs.size(1))
            logits, _ = self.model.step(inputs, torch.arange(inputs.size(1))[None], state)
            scores = F.log_softmax(logits[0].float(), dim=-1)[start - 1 - begin:]       # (end - start, V)
            targets = torch.tensor(ids[start:end])
            logprobs += scores.gather(1, targets[:, None])[:, 0].tolist()
            greedy += (scores.argmax(-1) == targets).tolist()
            start = end
        return logprobs, greedy

    def split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids): the whole text encoded at once, as the harness's own models do,
        so a continuation's leading space joins its first token."""
        context_ids = self.decoder.encode(context)
        whole = self.decoder.encode(context + continuation)
        if whole[:len(context_ids)] == context_ids and len(whole) > len(context_ids):
            return context_ids, whole[len(context_ids):]
        alone = self.decoder.encode(continuation)
        start = self.decoder.encode("")   # an n-gram run's <s>, a recurrent model's start-of-document <|eos|>
        return context_ids, alone[len(start):] if alone[:len(start)] == start else alone


def _harness_model_class():
    from lm_eval.api.model import LM

    class LmforgeLM(LM):
        """lm_eval's model interface over one lmforge run."""

        def __init__(self, run: Path, device: str = "cpu"):
            super().__init__()
            self.decoder = text_decoder(Path(run), verb="eval --harness", device=device)
            self.scorer = DecoderScorer(self.decoder)

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            out = []
            for request in requests:
                context, continuation = request.args
                context_ids, continuation_ids = self.scorer.split(context, continuation)
                logprobs, greedy = self.scorer.token_logprobs(context_ids + continuation_ids, len(context_ids))
                out.append((sum(logprobs), all(greedy)))
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            out = []
            for request in requests:
                ids = self.decoder.encode(request.args[0])
                start = self.decoder.encode("")
                # scored from the first token of the text, after the start-of-document token
                prefix = start if ids[:len(start)] == start and start else [self.decoder.eos_id]
                ids = ids if ids[:len(prefix)] == prefix else prefix + ids
                out.append(sum(self.scorer.token_logprobs(ids, len(prefix))[0]))
            return out

        def generate_until(self, requests, disable_tqdm: bool = False):
            out = []
            for request in requests:
                context, kwargs = request.args
                until = kwargs.get("until") or []
                until = [until] if isinstance(until, str) else list(until)
                sampling = SamplingConfig(temperature=float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample")
                                          else 0.0, top_p=None)
                generation = generate_batch(self.decoder.model, [self.decoder.encode(context)],
                                            max_new_tokens=int(kwargs.get("max_gen_toks", 256)), sampling=sampling,
                                            seeds=[0], eos_id=self.decoder.eos_id, decode=self.decoder.decode,
                                            stop_strings=until)[0]
                text = generation.text
                for stop in until:   # the harness expects the text before the first stop string
                    text = text.split(stop)[0]
                out.append(text)
            return out

    return LmforgeLM


def _task_names(task_file: Path) -> list[str]:
    import yaml

    try:
        spec = yaml.safe_load(task_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{task_file}: no such task file.") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", error)
        raise InputError(f"{task_file}: not valid YAML{line} ({problem}); fix the task file.") from None
    name = spec.get("task") if isinstance(spec, dict) else None
    names = name if isinstance(name, list) else [name]
    if not name or not all(isinstance(n, str) for n in names):
        raise InputError(f"{task_file}: no `task:` name; an lm-evaluation-harness task file starts with one.")
    return names


def run_harness(run: Path, task_file: Path, limit: int | None = None, num_fewshot: int | None = None,
                device: str = "cpu") -> dict:
    """The harness's results for the tasks of `task_file` on `run`: {task: {metric: value}} and versions."""
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise InputError("--harness needs EleutherAI's lm-evaluation-harness: pip install 'lmforge[interop]' "
                         "(or pip install lm_eval).") from None
    task_file = Path(task_file)
    names = _task_names(task_file)
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")   # a task's data comes from local files
    model = _harness_model_class()(run, device)
    manager = TaskManager(include_path=str(task_file.resolve().parent), include_defaults=False)
    missing = [n for n in names if n not in manager.all_tasks]
    if missing:
        raise InputError(f"{task_file}: the harness could not load task {', '.join(missing)} (check its fields).")
    try:
        results = lm_eval.simple_evaluate(model=model, tasks=names, task_manager=manager, limit=limit,
                                          num_fewshot=num_fewshot, log_samples=False, bootstrap_iters=0)
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise InputError(f"{task_file}: the harness could not run it ({str(error).splitlines()[0][:200]}).") from None
    metrics = {task: {k: v for k, v in values.items()
                      if k not in ("alias", "sample_len") and isinstance(v, (int, float))}
               for task, values in results["results"].items()}
    return {"harness": f"lm_eval {lm_eval.__version__}" if hasattr(lm_eval, "__version__") else "lm_eval",
            "run": str(Path(run).resolve()), "task_file": str(task_file), "results": metrics,
            "n_samples": results.get("n-samples", {})}
