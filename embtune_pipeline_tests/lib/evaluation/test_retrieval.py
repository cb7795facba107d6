import numpy as np

from embtune_pipeline.lib.evaluation.retrieval import CorpusIndex, corpus_index_name, rank_documents


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim))
    v = (centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_hnsw_index_finds_what_the_exact_scan_finds_and_survives_a_save(tmp_path):
    corpus = _clustered(3000)
    queries = corpus[:100] + 0.01
    exact = CorpusIndex.build(corpus, approximate=False)
    hnsw = CorpusIndex.build(corpus, approximate=True)
    assert (exact.kind, hnsw.kind) == ("exact", "hnsw") and len(hnsw) == 3000
    _, want = exact.top_k(queries, 10)
    loaded = CorpusIndex.load(hnsw.save(tmp_path / "i.faiss"))
    _, got = loaded.top_k(queries, 10)
    assert loaded.kind == "hnsw" and [p.name for p in tmp_path.iterdir()] == ["i.faiss"]  # no temporary left
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)])
    assert recall > 0.95
    assert exact.top_k(queries[:2], 5000)[1].shape == (2, 3000)  # k is capped at the corpus


def test_an_index_name_depends_on_the_chunks_and_their_order_and_the_kind():
    a = corpus_index_name(["h1", "h2"], True)
    assert a == corpus_index_name(["h1", "h2"], True)
    assert len({a, corpus_index_name(["h2", "h1"], True), corpus_index_name(["h1", "h2"], False)}) == 3


def test_documents_collapse_by_best_chunk_skipping_empty_rows():
    assert rank_documents(np.array([2, -1, 0, 1]), [["a"], ["b"], ["a", "c"]], 2) == ["a", "c"]
