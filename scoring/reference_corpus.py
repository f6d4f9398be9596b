"""The masked-LM reference corpus of the free-energy scorer: text in, fixed masked token sequences out.

Offline ("local") the text is the train split of every dataset under ``../shared/datasets`` ("local:a,b": of
those only), interleaved round-robin (so any prefix mixes all of them); on a deployment it is a UTF-8 file with
one document per line, e.g. a pinned slice of WikiText-103 (``MRL_REFERENCE_CORPUS=/data/wikitext103-slice.txt``)
that none of the suite's targets comes from. Documents are tokenized without special tokens, joined with the
separator token and cut into ``seq_len`` windows, each framed as ``[CLS] ... [SEP]`` — no padding, so every
model sees exactly the same tokens. Masking is drawn once
from the seed, so L_n(w) is a deterministic function of the weights, as SGLD needs: BERT's rule with an exact
count, round(15% of the non-special tokens) per sequence, of which 80% [MASK], 10% random, 10% kept. A fixed
count per sequence lets the LM head run on the masked positions only, with the same shapes in every batch.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import torch
from torch import Tensor

from data.errors import ScoringError
from data.targets import default_local_root


@dataclass(frozen=True, slots=True)
class MaskedCorpus:
    input_ids: Tensor  # (n, seq_len) long, masked
    positions: Tensor  # (n, k) long, the masked positions of each sequence, ascending
    targets: Tensor  # (n, k) long, the original tokens at those positions
    name: str
    revision: str  # 16 hex digits over the text and the tokenizer's vocabulary size

    def __len__(self) -> int:
        return len(self.input_ids)

    def rows(self, index: slice) -> MaskedCorpus:
        """Some of the sequences (a split); the name and revision stay the whole corpus's."""
        return MaskedCorpus(self.input_ids[index], self.positions[index], self.targets[index], self.name,
                            self.revision)


def corpus_documents(spec: str, *, local_root: Path | None = None) -> tuple[list[str], str]:
    """(documents, name) of a corpus spec: "local" (every local dataset), "local:a,b" (those datasets only: the
    study leaves its targets out) or the path of a text file. The name is the spec (a file's: its name)."""
    if spec == "local" or spec.startswith("local:"):
        root = Path(local_root) if local_root is not None else default_local_root()
        names = None if spec == "local" else [n.strip() for n in spec.removeprefix("local:").split(",") if n.strip()]
        return _local_documents(root, names), spec
    path = Path(spec)
    if not path.is_file():
        raise ScoringError(f"reference corpus {spec!r} is neither 'local' nor a readable text file")
    docs = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not docs:
        raise ScoringError(f"reference corpus {path} has no text")
    return docs, path.name


def local_dataset_names(root: Path) -> list[str]:
    """The datasets under a local root (each a folder with a dataset.json), sorted."""
    return sorted(p.parent.name for p in root.glob("*/dataset.json"))


def _local_documents(root: Path, names: list[str] | None) -> list[str]:
    available = local_dataset_names(root)
    if names is not None:
        unknown = sorted(set(names) - set(available))
        if unknown or not names:
            missing = ", ".join(unknown) or "(none given)"
            raise ScoringError(f"reference corpus local:{','.join(names)}: no local dataset named {missing} under "
                               f"{root}; there are: {', '.join(available)}")
    per_dataset = []
    for name in available if names is None else sorted(set(names)):
        meta_path = root / name / "dataset.json"
        fields = json.loads(meta_path.read_text())["text_fields"]
        with (meta_path.parent / "train.csv").open(newline="", encoding="utf-8") as f:
            per_dataset.append([" ".join(row[k] for k in fields if row.get(k)) for row in csv.DictReader(f)])
    if not per_dataset:
        raise ScoringError(f"no datasets (*/dataset.json) under {root} for the local reference corpus")
    return [doc for group in zip_longest(*per_dataset) for doc in group if doc]


def masked_corpus(tokenizer, documents: list[str], name: str, *, num_sequences: int, seq_len: int,
                  mask_prob: float, seed: int, skip: int = 0) -> MaskedCorpus:
    """Pack ``documents`` into windows of ``seq_len`` tokens, leave out the first ``skip`` and mask the next
    ``num_sequences`` (seeded)."""
    cls_id, sep_id, mask_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id
    if None in (cls_id, sep_id, mask_id):
        raise ScoringError("the base's tokenizer has no [CLS]/[SEP]/[MASK] tokens; masked-LM scoring needs them")
    body = seq_len - 2
    needed, stream, used = (skip + num_sequences) * body, [], 0
    for start in range(0, len(documents), 256):
        batch = documents[start:start + 256]
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            stream.extend([*ids, sep_id])
        used = start + len(batch)
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise ScoringError(f"reference corpus {name!r} has {len(stream)} tokens; {skip + num_sequences} sequences "
                           f"of {seq_len} need {needed}")
    body_ids = torch.tensor(stream[skip * body:needed], dtype=torch.long).view(num_sequences, body)
    n = num_sequences
    ids = torch.cat([torch.full((n, 1), cls_id), body_ids, torch.full((n, 1), sep_id)], dim=1)
    digest = hashlib.sha256("\n".join(documents[:used]).encode())
    digest.update(f"{len(tokenizer)}:{num_sequences}:{seq_len}:{mask_prob}:{seed}".encode())
    if skip:
        digest.update(f":skip {skip}".encode())  # revisions of unskipped corpora stay as they were
    masked, positions = _mask(ids, tokenizer, mask_prob, seed)
    return MaskedCorpus(input_ids=masked, positions=positions, targets=ids.gather(1, positions), name=name,
                        revision=digest.hexdigest()[:16])


def _mask(ids: Tensor, tokenizer, mask_prob: float, seed: int) -> tuple[Tensor, Tensor]:
    """(masked ids, positions): the same number of positions in every row, drawn among its ordinary tokens
    (the [SEP] between documents is never a target)."""
    gen = torch.Generator().manual_seed(seed)
    ordinary = ids != tokenizer.sep_token_id
    ordinary[:, 0] = ordinary[:, -1] = False
    k = max(1, round(mask_prob * int(ordinary.sum(dim=1).min())))
    scores = torch.rand(ids.shape, generator=gen).masked_fill(~ordinary, 2.0)  # never pick the special ones
    positions = scores.topk(k, dim=1, largest=False).indices.sort(dim=1).values
    roll = torch.rand(positions.shape, generator=gen)
    replacement = torch.where(roll < 0.8, torch.full_like(positions, tokenizer.mask_token_id),
                              torch.randint(len(tokenizer), positions.shape, generator=gen))
    replacement = torch.where(roll >= 0.9, ids.gather(1, positions), replacement)  # 10% kept as they were
    return ids.scatter(1, positions, replacement), positions
