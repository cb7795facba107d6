"""Embeddings cached per (model, max_seq_length) and chunk content hash: a chunk is never encoded twice by the
same model, so a new corpus snapshot pays only for its new chunks."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.evaluation.retrieval import CorpusIndex, corpus_index_name
from embtune_pipeline.lib.progress import SILENT, Reporter
from embtune_pipeline.lib.storage import set_aside, write_atomically

log = logging.getLogger(__name__)

EXPORT_DIR = "export"  # inside a model's store: its ONNX export (lib.encoders), made once per model and length
BATCHES_PER_SHARD = 32  # texts per shard = batch_size x this: progress and a resumable encoding, in few files


def embedding_key(fingerprint: str, max_seq_length: int) -> str:
    return f"{fingerprint}-L{max_seq_length}"


class EmbeddingStore:
    """Append-only shards of (hash, vector) under one directory per model key. Shards are read memory-mapped and
    rows are gathered on request, so a large cache is not loaded into RAM as a whole."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._loaded: tuple[dict[str, tuple[int, int]], list[np.ndarray]] | None = None

    def _load(self) -> tuple[dict[str, tuple[int, int]], list[np.ndarray]]:
        """The index (hash -> shard, row) and the shards, read once per instance; later calls see this
        instance's own writes."""
        if self._loaded is None:
            self._loaded = self._read_shards()
        return self._loaded

    def _read_shards(self) -> tuple[dict[str, tuple[int, int]], list[np.ndarray]]:
        index, shards = {}, []
        for meta in sorted(self.root.glob("shard-*.json")):
            vec_file = meta.with_suffix(".npy")
            if not vec_file.exists():
                continue  # a shard whose write was interrupted
            try:
                hashes, vectors = json.loads(meta.read_text()), np.load(vec_file, mmap_mode="r")
                if not isinstance(hashes, list) or len(hashes) != len(vectors):
                    raise ValueError(f"its hash list does not match its {len(vectors)} vectors")
            except (ValueError, OSError, EOFError) as e:  # bad JSON, a cut or garbled .npy, a mismatch
                self._set_aside(meta, f"shard {meta.stem}", e, "its vectors will be encoded again", (vec_file,))
                continue
            for row, h in enumerate(hashes):
                index.setdefault(h, (len(shards), row))
            shards.append(vectors)
        return index, shards

    @staticmethod
    def _set_aside(path: Path, what: str, problem: Exception, then: str, others: tuple[Path, ...] = ()) -> None:
        """A damaged file of the store moved aside (lib.storage.set_aside), bytes kept, with a warning naming
        both paths: the store goes on without it, a cache that only costs the work of making it again."""
        moved = []
        for p in (path, *others):
            try:
                moved.append(f"{p} to {set_aside(p)}")
            except FileNotFoundError:  # another process reading the store moved it first
                pass
        log.warning("embedding store: %s is damaged (%s): moved %s; %s", what, problem, ", ".join(moved), then)

    def missing(self, hashes) -> set[str]:
        index, _ = self._load()
        return {h for h in hashes if h not in index}

    def unsent(self, hashes: list[str], texts: list[str]) -> list[str]:
        """The distinct texts not stored yet: what encoding them would send to a paid model."""
        missing = self.missing(hashes)
        return list({h: t for h, t in zip(hashes, texts) if h in missing}.values())

    def get(self, hashes: list[str]) -> np.ndarray:
        """Stored vectors in order; a hash never encoded is an error (the producing step did not run)."""
        index, shards = self._load()
        missing = [h for h in hashes if h not in index]
        if missing:
            raise KeyError(f"{len(missing)} vectors missing from {self.root} (e.g. {missing[0]}); "
                           "re-materialize base_corpus_embeddings")
        return self._gather([index[h] for h in hashes], shards)

    @staticmethod
    def _gather(places: list[tuple[int, int]], shards: list[np.ndarray]) -> np.ndarray:
        """Rows from their shards, in the order asked, reading only those rows."""
        if not places:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.empty((len(places), shards[places[0][0]].shape[1]), dtype=np.float32)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for position, (shard, row) in enumerate(places):
            positions, rows = by_shard.setdefault(shard, ([], []))
            positions.append(position)
            rows.append(row)
        for shard, (positions, rows) in by_shard.items():
            out[positions] = shards[shard][rows]
        return out

    def encode(self, model, hashes: list[str], texts: list[str], batch_size: int = 64,
               reporter: Reporter = SILENT, what: str = "encoding") -> tuple[np.ndarray, int]:
        """Vectors for the texts in order (see fill); returns (vectors, encoded)."""
        encoded = self.fill(model, hashes, texts, batch_size, reporter, what)
        return self.get(hashes), encoded

    def fill(self, model, hashes: list[str], texts: list[str], batch_size: int = 64,
             reporter: Reporter = SILENT, what: str = "encoding") -> int:
        """Encode the hashes not yet stored, a block at a time, each block a shard of its own (an interrupted
        encoding keeps the blocks it finished), and return how many were encoded. A block's vectors leave RAM
        once written: the store reads them back memory-mapped."""
        index, shards = self._load()
        missing = {}
        for h, t in zip(hashes, texts):
            if h not in index and h not in missing:
                missing[h] = t
        if missing:
            progress = reporter.track(what, len(missing), "texts")
            todo = list(missing.items())
            block = batch_size * BATCHES_PER_SHARD
            for start in range(0, len(todo), block):
                part = dict(todo[start:start + block])
                vectors = model.encode(list(part.values()), batch_size=batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False).astype(np.float32)
                written = self._write_shard(list(part), vectors)
                for row, h in enumerate(part):
                    index[h] = (len(shards), row)
                shards.append(np.load(written, mmap_mode="r"))
                progress.advance(len(part))
        return len(missing)

    @property
    def dim(self) -> int:
        """The vectors' dimension (0 while nothing is stored), from one shard's header: no hash list is read."""
        if self._loaded is not None:
            shards = self._loaded[1]
        else:
            try:
                shards = [np.load(f, mmap_mode="r") for f in sorted(self.root.glob("shard-*.npy"))[:1]]
            except (ValueError, OSError, EOFError):
                shards = self._load()[1]  # a damaged shard: the full read sets it aside
        return int(shards[0].shape[1]) if shards else 0

    def blocks(self, hashes: list[str], size: int = 100_000):
        """The vectors of `hashes` in order, `size` rows at a time (see get)."""
        for start in range(0, len(hashes), size):
            yield self.get(hashes[start:start + size])

    def corpus_index(self, hashes: list[str], approximate: bool) -> tuple[CorpusIndex, bool]:
        """The search index over these vectors, row i being hashes[i], and whether it was read from disk. An
        approximate (HNSW) index is built once per (model, chunk list) and kept under indexes/, so mining a
        snapshot again, with other knobs or after a failure, does not rebuild it; an exact one is a copy of the
        vectors, built when asked."""
        path = self.root / "indexes" / corpus_index_name(hashes, approximate)
        if approximate and path.exists():
            try:
                return CorpusIndex.load(path), True
            except RuntimeError as e:  # faiss's word for a file it cannot read
                self._set_aside(path, f"search index {path.name}", e, "it is built again")
        index = CorpusIndex.build_from_blocks(self.blocks(hashes), approximate)
        if approximate:
            index.save(path)
        return index, False

    def _write_shard(self, hashes: list[str], vectors: np.ndarray) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        name = f"shard-{pd.Timestamp.now('UTC').strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        (self.root / f"{name}.json").write_text(json.dumps(hashes))

        def save(tmp: Path) -> None:
            with tmp.open("wb") as f:  # a file object: np.save would add ".npy" to a path
                np.save(f, vectors)

        return write_atomically(self.root / f"{name}.npy", save)  # written last: its presence marks the shard whole


def encoding_shards(store: EmbeddingStore, hashes, shard_size: int) -> list[list[str]]:
    """The distinct hashes the store lacks, in order, cut into shards of at most shard_size: each can be encoded
    by a separate process into the same store (each writes shards of its own; readers merge them by hash). At
    least one shard, empty when nothing is missing, so the steps after it always run."""
    missing = store.missing(hashes)
    todo = list(dict.fromkeys(h for h in hashes if h in missing))
    return [todo[i:i + shard_size] for i in range(0, len(todo), shard_size)] or [[]]


def encode_cached(store: EmbeddingStore, model, texts: list[str], batch_size: int = 64,
                  reporter: Reporter = SILENT, what: str = "encoding queries") -> tuple[np.ndarray, int]:
    """Vectors for free texts (queries, answers), cached by the hash of the text."""
    return store.encode(model, [text_hash(t) for t in texts], list(texts), batch_size, reporter, what)


def model_if_needed(store: EmbeddingStore, hashes, model_path, max_seq_length: int, backend: str = "torch",
                    sample_texts=()):
    """The model's encoder, loaded only when one of `hashes` is not stored yet (None otherwise): a rerun whose
    vectors are all cached does not pay the load. `backend` (lib.encoders.choose_encoder) may run it exported, the
    export kept beside the store and checked on `sample_texts` against PyTorch; a store's vectors agree across
    backends to a cosine of lib.encoders.AGREEMENT."""
    from embtune_pipeline.lib.encoders import choose_encoder

    if not store.missing(hashes):
        return None
    chosen = choose_encoder(Path(model_path), max_seq_length, backend, store.root / EXPORT_DIR, sample_texts)
    log.info("encoding with %s (%s)", chosen.backend, chosen.reason)
    return chosen.encoder


def encoder_backend(base_corpus_embeddings: dict) -> str:
    """The backend base_corpus_embeddings encoded with, for the steps after it (torch: a value stored before
    backends were a setting)."""
    return base_corpus_embeddings.get("backend", "torch")


def backend_of(encoder) -> str:
    """The backend an encoder from model_if_needed runs on (for metadata): "none" when nothing was encoded."""
    return "none" if encoder is None else getattr(encoder, "runtime", "torch")
