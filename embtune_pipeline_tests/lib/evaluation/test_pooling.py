import pandas as pd

from embtune_pipeline.lib.evaluation.pooling import bm25_rankings, pool, pool_frame


def test_the_pool_takes_each_retrievers_top_in_turn_and_says_who_ranked_what():
    rankings = {"base": [["d1", "d2", "d3"]], "bm25": [["d2", "d4", "d5"]]}
    [candidates] = pool(rankings, size=4)
    assert candidates == [("d1", ["base"]), ("d2", ["bm25", "base"]), ("d4", ["bm25"]), ("d3", ["base"])]
    assert [len(c) for c in pool(rankings | {"tuned": [["d9", "d8"]]}, size=2)] == [2]


def test_bm25_finds_the_words_the_query_uses_and_the_pool_carries_the_documents_text():
    chunks = pd.DataFrame({"chunk_id": ["a#0", "b#0", "c#0"], "doc_id": ["a", "b", "c"],
                           "alias_doc_ids": [[], [], []], "title": ["", "", ""],
                           "text": ["jaguar battery lasts eighteen hours", "ocelot pairing code",
                                    "warranty covers water damage"]})
    assert [r[0] for r in bm25_rankings(chunks, ["how long does the battery last", "water damage warranty"],
                                        2)] == ["a", "c"]
    queries = pd.DataFrame({"query_id": ["q1"], "query": ["battery"]})
    frame = pool_frame(queries, [[("a", ["bm25", "base"])]], chunks.assign(title="A"))
    assert frame.iloc[0].to_dict() == {"query_id": "q1", "query": "battery", "doc_id": "a", "title": "A",
                                       "text": "jaguar battery lasts eighteen hours", "pool_rank": 0,
                                       "sources": "bm25,base"}
