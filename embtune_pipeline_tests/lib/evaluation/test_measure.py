import pandas as pd

from embtune_pipeline.lib.data.chunking import text_hash
from embtune_pipeline.lib.embeddings import EmbeddingStore
from embtune_pipeline.lib.evaluation.measure import measure

CHUNKS = pd.DataFrame({
    "chunk_id": ["d1#0", "d2#0", "d3#0"], "doc_id": ["d1", "d2", "d3"],
    "title": ["Jaguar", "Ocelot", "Lynx"],
    "text": ["Jaguar resets when the button is held.", "Ocelot charges in an hour.", "Lynx stores files."],
})
CHUNKS["chunk_hash"] = [text_hash(t) for t in CHUNKS["text"]]
CHUNKS["alias_doc_ids"] = [[], [], []]
EVAL_SET = pd.DataFrame({"query_id": ["q1", "q2"], "query": ["reset the jaguar", "charge the ocelot"],
                         "doc_id": ["d1", "d2"], "score": [1, 1]})


def test_measure_encodes_once_then_scores_from_the_cache(tiny_model, tmp_path):
    store = EmbeddingStore(tmp_path / "cache")
    first = measure(tiny_model, 32, store, CHUNKS, EVAL_SET, batch_size=2)
    assert (first.distinct_texts, first.encoded, first.cache_hits) == (5, 5, 0)
    assert first.per_query["query_id"].tolist() == ["q1", "q2"]
    assert first.corpus_vectors.shape[0] == 3 and first.query_vectors.shape[0] == 2
    assert first.per_query["ndcg@10"].between(0, 1).all()
    # a model path that does not exist proves nothing is loaded when every vector is stored
    again = measure(tmp_path / "no-such-model", 32, EmbeddingStore(tmp_path / "cache"), CHUNKS, EVAL_SET)
    assert (again.encoded, again.cache_hits) == (0, 5)
    pd.testing.assert_frame_equal(again.per_query, first.per_query)
