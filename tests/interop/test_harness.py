"""The lm-evaluation-harness adapter: its log-likelihoods equal lmforge's own sums on the same tokens
(a GPT through eval's windows, an LSTM, an n-gram model through its backoff tables), and `eval --harness`
runs multiple-choice, perplexity and generation tasks from a local task YAML."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests.conftest import assert_input_error

from lmforge.evaluation.perplexity import nll_sums
from lmforge.inference.loading import text_decoder
from lmforge.ngram.store import load_ngram_run

pytest.importorskip("lm_eval")

from lmforge.interop.harness import DecoderScorer, _harness_model_class  # noqa: E402

TEXT = "the old river runs under every quiet mountain and the blue engine sleeps near the stream"


def request(*args):
    return SimpleNamespace(args=args)


@pytest.mark.parametrize("name", ["gpt", "gpt_tied_gqa"])
def test_rolling_loglikelihood_is_the_eval_sum_over_the_same_tokens(interop_runs, name):
    model = _harness_model_class()(interop_runs[name])
    decoder = model.decoder
    ids = [decoder.eos_id, *decoder.encode(TEXT * 3)]   # longer than the 48-token window: windows slide
    assert len(ids) > 2 * decoder.model.max_context
    [rolling] = model.loglikelihood_rolling([request(TEXT * 3)])
    # eval's own sum: every window of 47 targets with its full context, one after another, as eval scores
    # a split whose windows do not overlap, plus the tail scored in one sliding window
    tokens = np.array(ids)
    seq = decoder.model.max_context
    expected, start = 0.0, 1
    while start < len(ids):
        end = min(len(ids), start + seq)
        begin = max(0, end - 1 - seq)
        sums = nll_sums(decoder.model, tokens, np.array([begin]), end - 1 - begin, 1, torch.device("cpu"),
                        None, 1.0, scored_from=start - 1 - begin)
        expected -= sums.nll
        start = end
    assert rolling == pytest.approx(expected, rel=1e-5)


def test_a_continuation_scores_given_its_context(interop_runs):
    model = _harness_model_class()(interop_runs["gpt"])
    context, text = "every writer says:", " the old river runs under every quiet mountain"
    cut = text.index(" runs")
    assert len(model.decoder.encode(context + text)) < model.decoder.model.max_context   # one window: exact
    [(whole, _)] = model.loglikelihood([request(context, text)])
    [(first, _)] = model.loglikelihood([request(context, text[:cut])])
    [(second, _)] = model.loglikelihood([request(context + text[:cut], text[cut:])])
    assert first + second == pytest.approx(whole, rel=1e-4)   # chain rule over the same tokens


def test_an_lstm_and_an_ngram_run_are_scored_like_their_own_eval(served_runs):
    lstm = _harness_model_class()(served_runs["gru"])
    ids = lstm.decoder.encode(TEXT)   # [<|eos|>, ...]: a recurrent model starts a document after EOS
    with torch.no_grad():
        logits = lstm.decoder.model(torch.tensor([ids[:-1]]))
        logits = logits[0] if isinstance(logits, tuple) else logits
        expected = torch.log_softmax(logits[0], -1).gather(1, torch.tensor(ids[1:])[:, None]).sum().item()
    assert lstm.loglikelihood_rolling([request(TEXT)])[0] == pytest.approx(expected, rel=1e-5)
    ngram = _harness_model_class()(served_runs["kn3"])
    scored = load_ngram_run(served_runs["kn3"]).model.score_sentences([TEXT.split()])
    expected = float(scored.logp[:-1].sum()) * math.log(10)   # every word, not the closing </s>
    assert ngram.loglikelihood_rolling([request(TEXT)])[0] == pytest.approx(expected, rel=1e-4)


def write_tasks(folder):
    rows = [{"question": "the river", "choices": [" runs", " sleeps"], "answer": 0, "text": "the river runs."},
            {"question": "a quiet", "choices": [" engine", " the"], "answer": 0, "text": "a quiet engine sleeps."}]
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
    (folder / "mc.yaml").write_text(f"task: toy_mc\n{common}output_type: multiple_choice\n"
                                    "doc_to_text: '{{question}}'\ndoc_to_choice: '{{choices}}'\n"
                                    "doc_to_target: '{{answer}}'\nmetric_list:\n  - metric: acc\n")
    (folder / "ppl.yaml").write_text(f"task: toy_ppl\n{common}output_type: loglikelihood_rolling\n"
                                     "doc_to_text: ''\ndoc_to_target: '{{text}}'\nmetric_list:\n"
                                     "  - metric: bits_per_byte\n")
    (folder / "gen.yaml").write_text(f"task: toy_gen\n{common}output_type: generate_until\n"
                                     "doc_to_text: '{{question}}'\ndoc_to_target: '{{choices[0]}}'\n"
                                     "generation_kwargs:\n  until: ['.']\n  max_gen_toks: 6\n"
                                     "metric_list:\n  - metric: exact_match\n")
    return folder


def test_eval_harness_runs_local_tasks_on_decoder_and_ngram_runs(cli, interop_runs, served_runs, tmp_path):
    folder = write_tasks(tmp_path)
    for run in (interop_runs["gpt"], served_runs["kn3"]):
        for task, metric in (("mc", "acc,none"), ("ppl", "bits_per_byte,none"), ("gen", "exact_match,none")):
            result = cli("eval", "--run", run, "--harness", folder / f"{task}.yaml", "--json")
            assert result.code == 0, result.err
            values = result.json()["results"][f"toy_{task}"]
            assert metric in values and math.isfinite(values[metric]), values
    # bits per byte from the harness = our rolling log-likelihood over the texts' bytes
    model = _harness_model_class()(interop_runs["gpt"])
    texts = ["the river runs.", "a quiet engine sleeps."]
    total = sum(model.loglikelihood_rolling([request(t) for t in texts]))
    expected = -total / math.log(2) / sum(len(t.encode()) for t in texts)
    result = cli("eval", "--run", interop_runs["gpt"], "--harness", folder / "ppl.yaml", "--json").json()
    assert result["results"]["toy_ppl"]["bits_per_byte,none"] == pytest.approx(expected, rel=1e-6)


def test_bad_task_files_and_runs_are_one_line_errors(cli, interop_runs, tmp_path):
    (tmp_path / "broken.yaml").write_text("task: [unclosed\n")
    assert_input_error(cli("eval", "--run", interop_runs["gpt"], "--harness", tmp_path / "broken.yaml"),
                       "not valid YAML")
    (tmp_path / "nameless.yaml").write_text("output_type: multiple_choice\n")
    assert_input_error(cli("eval", "--run", interop_runs["gpt"], "--harness", tmp_path / "nameless.yaml"),
                       "no `task:` name")
    write_tasks(tmp_path)
    assert_input_error(cli("eval", "--run", interop_runs["bert_pre"], "--harness", tmp_path / "mc.yaml"),
                       "encoder")


def test_the_scorer_windows_cover_every_target_once(interop_runs):
    decoder = text_decoder(interop_runs["gpt"])
    scorer = DecoderScorer(decoder)
    ids = [decoder.eos_id, *decoder.encode(TEXT * 4)]
    logprobs, greedy = scorer.token_logprobs(ids, 1)
    assert len(logprobs) == len(greedy) == len(ids) - 1 and all(lp <= 0 for lp in logprobs)
