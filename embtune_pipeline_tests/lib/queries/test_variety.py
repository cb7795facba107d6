import pandas as pd

from embtune_pipeline.lib.queries.variety import keyword_query, vary_queries


def test_a_keyword_query_keeps_the_content_words_in_order():
    assert keyword_query("How long does the Jaguar X2 battery last?") == "long jaguar x2 battery last"
    assert keyword_query("The Jaguar's battery, the JAGUAR's charger and 3 cables", max_words=4) == \
        "jaguar's battery charger 3"
    assert keyword_query("Is it what it is?") == ""


def test_a_share_of_the_queries_becomes_keywords_the_same_ones_on_a_rerun():
    queries = pd.DataFrame({"chunk_hash": [f"h{i}" for i in range(200)],
                            "query": [f"How do I reset the Jaguar X{i} after a firmware update?" for i in range(200)]})
    varied = vary_queries(queries, 0.3, "question", seed=0)
    keywords = varied[varied["kind"] == "keywords"]
    assert 40 <= len(keywords) <= 80  # about 30% of 200
    assert keywords["query"].iloc[0].startswith("reset jaguar x") and "?" not in keywords["query"].iloc[0]
    assert (varied.loc[varied["kind"] == "question", "query"] == queries.loc[varied["kind"] == "question",
                                                                           "query"]).all()
    assert varied.equals(vary_queries(queries, 0.3, "question", seed=0))
    assert set(vary_queries(queries, 0.0, "claim")["kind"]) == {"claim"}
    assert set(vary_queries(queries, 1.0, "claim")["kind"]) == {"keywords"}


def test_the_generators_query_style_picks_its_prompt_and_the_kind_it_writes(write_settings, jaguar_beir):
    from embtune_pipeline.lib.queries.generate import PROMPTS
    from embtune_pipeline.resources.llm import QueryGenerator
    from embtune_pipeline.resources.settings import SettingsResource

    def generator(**section):
        path = write_settings(corpus={"path": str(jaguar_beir), "format": "beir"}, generator=section)
        return QueryGenerator(settings=SettingsResource(config_path=str(path)))

    claims = generator(model="openai/gpt-4o-mini", query_style="claims")
    assert claims.prompt_template == PROMPTS["claims"] and "$n different claims" in claims.prompt_template.read_text()
    assert claims.query_kind == "claim"
    assert generator(model="openai/gpt-4o-mini").query_kind == "question"
    assert generator(model="ict").query_kind == "claim"  # a sentence cut from the chunk
