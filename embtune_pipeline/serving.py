"""Search a vector index the way a service does: with the model version its table was built with.

    from embtune_pipeline.serving import open_index

    index = open_index("demo")            # settings: $EMBTUNE_CONFIG, else the bundled demo
    index.version, index.table            # "1", "demo__v1__<snapshot>"
    for hit in index.search(["how do I read a CSV file"], k=5)[0]:
        print(hit.doc_id, round(hit.score, 3), hit.text[:80])

Queries are encoded by the registered version that built the table the index serves (loaded from the
registry, never `@champion`), so query and document vectors always come from one model. Each search reads the
index's pointer once: after a rollout or a rollback the next search uses the new table, and its version's
model (loaded once per version); a search in flight is answered whole by one table."""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from embtune_pipeline.lib.serving.pointer import Pointer
from embtune_pipeline.lib.serving.tables import Hit, VectorIndexError

__all__ = ["Hit", "ServedIndex", "VectorIndexError", "open_index"]

MODEL_AGREEMENT = 0.99  # an export (OpenVINO, ONNX) may have built the table: lib.encoders.AGREEMENT is 0.999


class ServedIndex:
    """An index bound to its current table and to the version that built it (see the module's docstring)."""

    def __init__(self, name: str, store, registry, settings, follow: bool = True):
        self.name, self._store, self._registry, self._settings = name, store, registry, settings
        self._follow = follow
        self._models: dict[str, object] = {}
        self._lock = threading.Lock()
        self._pointer = self._current()
        self._model_for(self._pointer)  # loaded now: a version that cannot be loaded fails at open

    def _current(self) -> Pointer:
        pointer = self._store.pointer(self.name)
        if pointer is None:
            raise VectorIndexError(f"index {self.name} has no table yet: build it (`embtune index build "
                                   f"{self.name}`)")
        return pointer

    @property
    def version(self) -> str:
        """The registered version that built the table last searched (at open: the current one)."""
        return self._pointer.version

    @property
    def table(self) -> str:
        return self._pointer.table

    @property
    def pointer(self) -> Pointer:
        return self._pointer

    def _model_for(self, pointer: Pointer):
        """The sentence-transformers model of the pointer's version, loaded once per version and checked to be
        the model whose vectors the table holds: it encodes a few of the table's chunks again and must find
        their stored vectors (cosine >= MODEL_AGREEMENT)."""
        with self._lock:
            if pointer.version not in self._models:
                from embtune_pipeline.lib.data.chunking import chunk_texts
                from embtune_pipeline.lib.models import load_model
                from embtune_pipeline.lib.serving.versions import version_model

                s = self._settings
                vm = version_model(self._registry, self._registry.get(pointer.version), s.layout.downloaded_models,
                                   s.run.embed.max_seq_length)
                model = load_model(vm.model_dir, vm.max_seq_length, device="cpu")
                rows, stored = self._store.sample(self.name, pointer.table, 4)
                if len(rows):
                    again = model.encode(chunk_texts(rows), normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False)
                    agreement = float(np.min(np.sum(again * stored, axis=1))) if again.shape == stored.shape else -1
                    if agreement < MODEL_AGREEMENT:
                        raise VectorIndexError(
                            f"index {self.name}: v{pointer.version}'s model at {vm.model_dir} does not reproduce "
                            f"the vectors of table {pointer.table} (least cosine {agreement:.4f}, under "
                            f"{MODEL_AGREEMENT}): queries would be encoded by another model than the documents")
                self._models[pointer.version] = model
            return self._models[pointer.version]

    def search(self, texts: list[str], k: int = 10) -> list[list[Hit]]:
        """For each text, its k nearest chunks (chunk id, document id, cosine score, text), best first."""
        pointer = self._current() if self._follow else self._pointer
        model = self._model_for(pointer)
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        hits = self._store.search(self.name, pointer.table, vectors, k)
        self._pointer = pointer
        return hits


def open_index(name: str, settings_path: Optional[str] = None, follow: bool = True) -> ServedIndex:
    """The index `name` of the settings file (default: $EMBTUNE_CONFIG, else the bundled demo), with the code
    location's vector store and registry (definitions.py). follow=False pins it to the table it serves now."""
    from embtune_pipeline.definitions import build_definitions

    defs = build_definitions(settings_path)
    settings = defs.resources["settings"].get()
    settings.index(name)  # a SettingsError naming the declared indexes
    return ServedIndex(name, defs.resources["vector_store"], defs.resources["mlflow"].registry(fail_fast=True),
                       settings, follow)
