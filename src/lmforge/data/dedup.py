"""Phase 2 of prepare: global exact and near-duplicate removal over finished parts, then the split.

Parts are visited in the global input order (validation sources first), and the representative of
each duplicate cluster is its first document in that order. So the result depends only on the
inputs, never on how they were sharded or which worker finished first: N shards merged give
exactly what one process gives."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.data.minhash import near_duplicate_clusters
from lmforge.data.work import DOC_FACTS, part_name, read_part_lines
from lmforge.data.writers import DocumentWriter


@dataclass
class Part:
    work: Path
    index: int
    group: str  # "train" (split by hash), or "val" / "test" (an explicit validation or test source)


def _load(parts: list[Part], suffix: str, width: int | None = None) -> np.ndarray:
    arrays = [np.load(p.work / f"{part_name(p.index)}.{suffix}.npy") for p in parts]
    if not arrays:
        return np.zeros((0,), dtype=DOC_FACTS) if width is None else np.zeros((0, width))
    return np.concatenate(arrays) if width is None else np.concatenate([a.reshape(-1, width) for a in arrays])


def load_facts(parts: list[Part]) -> np.ndarray:
    """The per-document facts of phase 1 (work.DOC_FACTS), all parts in order."""
    return _load(parts, "docs")


def duplicate_decisions(parts: list[Part], facts: np.ndarray, config) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per document kept by phase 1: its verdict ('' to keep, 'exact_duplicate' or 'near_duplicate')
    and, for a duplicate, the global index of the document it duplicates (-1 otherwise)."""
    keys = facts["key"]
    decision = np.full(len(keys), "", dtype=object)
    duplicate_of = np.full(len(keys), -1, dtype=np.int64)
    if config.dedup and len(keys):
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        exact = first[inverse] != np.arange(len(keys))
        decision[exact] = "exact_duplicate"
        duplicate_of[exact] = first[inverse][exact]
    report = {"exact_removed": int(exact.sum()) if config.dedup and len(keys) else 0,
              "near_removed": 0, "near_clusters": 0}
    if config.near_dedup and len(keys):
        survivors = np.flatnonzero(decision == "")
        signatures = _load(parts, "minhash", config.minhash.num_perm)[survivors]
        representative = near_duplicate_clusters(signatures, config.minhash)
        removed = representative != np.arange(len(survivors))
        decision[survivors[removed]] = "near_duplicate"
        duplicate_of[survivors[removed]] = survivors[representative[removed]]
        report["near_removed"] = int(removed.sum())
        report["near_clusters"] = int(len(np.unique(representative[removed])))
        # an exact copy of a document that was then dropped as a near duplicate points past it
        exact_targets = np.flatnonzero(decision == "exact_duplicate")
        hop = duplicate_of[duplicate_of[exact_targets]]
        duplicate_of[exact_targets] = np.where(hop >= 0, hop, duplicate_of[exact_targets])
    return decision, duplicate_of, report


def write_final(parts: list[Part], facts: np.ndarray, decision: np.ndarray, duplicate_of: np.ndarray, config,
                out: Path) -> dict:
    """Stream the parts in order; write kept documents to clean/{train,val}, duplicates to rejected/
    with the id of the document each one duplicates (which always comes earlier in the stream).
    A kept line is copied as it is: its split, size and words were computed in phase 1 (in parallel),
    and the output is compressed by as many threads as there are workers."""
    counts = {"docs_out": {}, "bytes_out": {}, "dup_bytes": {}}
    wanted = set(duplicate_of[duplicate_of >= 0].tolist())
    kept_ids: dict[int, str] = {}
    position = 0
    rejects = (DocumentWriter(out / "rejected", subdirs=True, stem="dedup", threads=config.workers)
               if config.keep_rejected else None)
    with DocumentWriter(out / "clean", threads=config.workers) as writer:
        for part in parts:
            for line in read_part_lines(part.work, part.index):
                verdict, original, fact = decision[position], int(duplicate_of[position]), facts[position]
                if position in wanted:
                    kept_ids[position] = json.loads(line).get("id", str(position))
                position += 1
                if verdict:
                    counts["dup_bytes"][verdict] = counts["dup_bytes"].get(verdict, 0) + int(fact["bytes"])
                    if rejects is not None:
                        rejects.write(verdict, {**json.loads(line), "duplicate_of": kept_ids.get(original)})
                    continue
                split = part.group if part.group in ("val", "test") else (
                    "val" if fact["split"] < config.val_fraction else "train")
                writer.write_line(split, line)
                counts["docs_out"][split] = counts["docs_out"].get(split, 0) + 1
                counts["bytes_out"][split] = counts["bytes_out"].get(split, 0) + int(fact["bytes"])
    if rejects is not None:
        rejects.close()
    counts["lengths"] = facts["words"][decision == ""].astype(np.int64)  # every document without a verdict
    return counts


def collect_phase1_rejects(parts: list[Part], out: Path) -> None:
    """Bring each part's rejected/<reason>/ files under out/rejected/ (hard links where possible)."""
    for part in parts:
        for path in (part.work / "rejected").glob(f"*/{part_name(part.index)}-*.jsonl.gz"):
            target = out / "rejected" / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
