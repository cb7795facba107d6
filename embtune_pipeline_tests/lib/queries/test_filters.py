import pandas as pd

from embtune_pipeline.lib.queries.filters import filter_queries


def test_each_filter_counts_its_rejects():
    passage = "The Jaguar X1 battery lasts about eighteen hours of continuous use on a single charge."
    rows = [
        "how long does the jaguar battery last",                       # kept
        "battery",                                                    # too short
        " ".join(["word"] * 50),                                      # too long
        "battery lasts about eighteen hours of continuous use",        # echo of the passage
        "How long does the Jaguar battery last?",                      # duplicate after normalization
    ]
    df = pd.DataFrame({"query": rows, "positive": passage, "chunk_id": "c"})
    kept, rejects = filter_queries(df)
    assert kept["query"].tolist() == [rows[0]]
    assert rejects == {"too_short": 1, "too_long": 1, "implausible": 0, "echo": 1, "overlap": 0, "duplicate": 1}


def test_overlap_cap():
    df = pd.DataFrame({"query": ["jaguar battery hours"], "positive": ["jaguar battery hours of use"]})
    assert len(filter_queries(df)[0]) == 1
    kept, rejects = filter_queries(df, max_overlap=0.5)
    assert kept.empty and rejects["overlap"] == 1
