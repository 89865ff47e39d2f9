"""Execution: workers, rank/world-size shards merged, and resume give exactly the single-process output."""

import gzip
import json
import random
import shutil

import pytest

from conftest import assert_input_error, make_sentences
from lmforge.data.prepare import PrepareConfig, merge_prepared, prepare_corpus


def write_inputs(folder, files=5, docs=40):
    rng = random.Random(1)
    folder.mkdir()
    shared = [make_sentences(rng, 12) for _ in range(10)]  # duplicated across files
    for f in range(files):
        with open(folder / f"in{f}.jsonl", "w") as handle:
            for i in range(docs):
                text = shared[(f + i) % 10] if i % 7 == 0 else make_sentences(rng, 12)
                if i % 11 == 0:  # a near duplicate: one word changed
                    text = shared[i % 10].replace("the", "THE-X", 1)
                handle.write(json.dumps({"text": text}) + "\n")
    return folder


def contents(out):
    files = {}
    for path in sorted((out / "clean").glob("*.jsonl.gz")):
        files[path.name] = gzip.open(path).read()
    stats = json.loads((out / "stats.json").read_text())
    return files, {k: stats[k] for k in ("docs_in", "docs_out", "rejected_docs", "dedup")}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    root = tmp_path_factory.mktemp("exec")
    src = write_inputs(root / "src")
    prepare_corpus([src], root / "single", PrepareConfig(val_fraction=0.2))
    return root, src, contents(root / "single")


def test_dedup_happened(single):
    _, _, (files, stats) = single
    assert stats["dedup"]["exact_removed"] > 10 and stats["dedup"]["near_removed"] >= 1
    assert set(files) == {"train-00000.jsonl.gz", "val-00000.jsonl.gz"}


def test_workers_give_the_same_output(single, tmp_path):
    root, src, expected = single
    prepare_corpus([src], tmp_path / "w2", PrepareConfig(val_fraction=0.2, workers=2))
    assert contents(tmp_path / "w2") == expected


def test_shards_merged_equal_one_process(single, tmp_path, cli):
    root, src, expected = single
    for rank in range(3):
        assert cli("prepare", src, "--out", tmp_path / f"shard-{rank}", "--val-fraction", "0.2",
                   "--rank", rank, "--world-size", 3).code == 0
    result = cli("prepare", "--merge", *[tmp_path / f"shard-{r}" for r in range(3)], "--out", tmp_path / "merged")
    assert result.code == 0, result.err
    assert contents(tmp_path / "merged") == expected
    # a missing rank is an error, not a silent partial merge
    assert_input_error(cli("prepare", "--merge", tmp_path / "shard-0", tmp_path / "shard-1", "--out",
                           tmp_path / "partial"), "no finished part", "missing ranks")


def test_killed_run_resumes_without_losing_or_duplicating(single, tmp_path):
    root, src, expected = single
    out = tmp_path / "resumed"
    prepare_corpus([src], out, PrepareConfig(val_fraction=0.2))
    # simulate a kill during phase 1: the last two inputs unfinished, phase 2 never ran
    for index in (3, 4):
        (out / "work" / f"part-{index:06d}.json").unlink()
    (out / "work" / "part-000004.jsonl.gz").unlink()
    for name in ("stats.json", "clean"):
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    stats = prepare_corpus([src], out, PrepareConfig(val_fraction=0.2))
    assert contents(out) == expected
    assert stats["inputs"] == 5
    # other settings on the same unfinished work folder are refused
    (out / "stats.json").unlink()
    with pytest.raises(Exception, match="other inputs or settings"):
        prepare_corpus([src], out, PrepareConfig(val_fraction=0.3))


def test_stats_and_histogram(single):
    root, _, _ = single
    stats = json.loads((root / "single" / "stats.json").read_text())
    assert stats["inputs"] == 5 and stats["docs_in"] == 200 and stats["mb_per_s"] > 0
    assert (root / "single" / "lengths.png").stat().st_size > 1000
    duplicates = [json.loads(line) for path in (root / "single" / "rejected").glob("*_duplicate/*.jsonl.gz")
                  for line in gzip.open(path, "rt")]
    kept = {json.loads(line)["id"]: json.loads(line)["text"] for path in (root / "single" / "clean").glob("*.gz")
            for line in gzip.open(path, "rt")}
    assert len(duplicates) == stats["dedup"]["exact_removed"] + stats["dedup"]["near_removed"]
    for duplicate in duplicates:  # each names the kept document it duplicates
        assert duplicate["duplicate_of"] in kept


def test_local_hugging_face_layout_and_hub_without_network(tmp_path, cli, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    layout = tmp_path / "hf" / "data"
    layout.mkdir(parents=True)
    rng = random.Random(2)
    pq.write_table(pa.table({"content": [make_sentences(rng, 8) for _ in range(20)]}),
                   layout / "train-00000-of-00002.parquet")
    table = pa.table({"content": [make_sentences(rng, 8) for _ in range(20)]})
    with pa.ipc.new_stream(str(layout / "data-00001-of-00002.arrow"), table.schema) as writer:
        writer.write_table(table)
    result = cli("prepare", tmp_path / "hf", "--text-field", "content", "--out", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    assert result.json()["docs_in"] == 40
    assert_input_error(cli("prepare", tmp_path / "hf", "--out", tmp_path / "o2"), "no column 'text'",
                       "--text-field")
    # the test must not reach out to the hub: offline mode makes `datasets` fail at once, as with no network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    offline = cli("prepare", "hf:some-user/some-dataset-that-is-not-cached", "--out", tmp_path / "o3")
    assert_input_error(offline, "hf:some-user/some-dataset-that-is-not-cached", "local folder")


def test_language_filter_and_distribution(tmp_path, cli):
    rng = random.Random(3)
    docs = [make_sentences(rng, 10) for _ in range(10)]
    docs += ["Това е дълъг български текст за реките, планините и градовете на страната. " * 3] * 1
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    result = cli("prepare", tmp_path / "in.jsonl", "--out", tmp_path / "out", "--lang", "en", "--json")
    assert result.code == 0
    summary = result.json()
    assert summary["languages"] == {"en": 10, "bg": 1}
    assert summary["rejected_docs"] == {"language": 1}


def test_gzip_members_are_the_same_bytes_for_any_thread_count(tmp_path, monkeypatch):
    from lmforge.data import writers

    monkeypatch.setattr(writers, "MEMBER_BYTES", 2000)  # many members from a few hundred lines
    lines = [json.dumps({"text": make_sentences(random.Random(i), 3)}).encode() + b"\n" for i in range(300)]
    outputs = []
    for threads in (1, 3):
        with writers.DocumentWriter(tmp_path / f"t{threads}", threads=threads) as writer:
            for line in lines:
                writer.write_line("train", line)
        outputs.append((tmp_path / f"t{threads}" / "train-00000.jsonl.gz").read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\x1f\x8b\x08") > 5  # several members...
    assert gzip.decompress(outputs[0]) == b"".join(lines)  # ...read as one stream


def test_a_work_folder_of_an_earlier_version_is_not_resumed(single, tmp_path):
    root, src, _ = single
    out = tmp_path / "old"
    prepare_corpus([src], out, PrepareConfig(val_fraction=0.2))
    manifest = json.loads((out / "work" / "manifest.json").read_text())
    del manifest["work_version"]  # as written before phase 1 kept per-document facts (.docs.npy)
    (out / "work" / "manifest.json").write_text(json.dumps(manifest))
    (out / "stats.json").unlink()
    with pytest.raises(Exception, match="earlier lmforge.*--overwrite"):
        prepare_corpus([src], out, PrepareConfig(val_fraction=0.2))
    with pytest.raises(Exception, match="earlier lmforge.*--overwrite"):
        merge_prepared([out], tmp_path / "merged", PrepareConfig())
    assert prepare_corpus([src], out, PrepareConfig(val_fraction=0.2), overwrite=True)["inputs"] == 5
