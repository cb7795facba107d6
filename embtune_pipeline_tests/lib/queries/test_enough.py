import pandas as pd

from embtune_pipeline.lib.llm_calls import CallStats
from embtune_pipeline.lib.queries.enough import generate_enough

SAMPLE = pd.DataFrame({"chunk_hash": [f"h{i}" for i in range(100)], "chunk_id": [f"c{i}" for i in range(100)]})


class Generator:
    """Two queries a chunk; every other chunk's are duplicates of another chunk's, so half fail the filters.
    Counts what a cache would leave to pay: chunks never asked before."""

    def __init__(self):
        self.asked, self.rounds = set(), []

    def __call__(self, chunks: pd.DataFrame):
        self.rounds.append(len(chunks))
        new = set(chunks["chunk_id"]) - self.asked
        self.asked |= new
        rows = [{"chunk_id": c, "positive": "about the Jaguar product line and its firmware",
                 "query": f"how does jaguar topic {int(c[1:]) // 2 * 2} {k} work"}
                for c in chunks["chunk_id"] for k in ("reset", "pairing")]
        return pd.DataFrame(rows), CallStats(llm_calls=len(new), cache_hits=len(chunks) - len(new))


def test_queries_are_generated_until_the_training_has_what_it_draws_and_no_further():
    generate = Generator()
    result = generate_enough(generate, SAMPLE, needed=40, queries_per_chunk=2, seed=0)
    assert len(result.kept) >= 40 and result.chunks_asked < len(SAMPLE)
    assert generate.rounds[0] == 24  # 1.2 x 40 queries at 2 a chunk; half are duplicates, so a second round
    assert len(generate.rounds) == 2 and result.chunks_asked == generate.rounds[-1]
    assert result.stats.llm_calls == len(generate.asked) == result.chunks_asked  # no chunk paid for twice
    assert result.generated == 2 * result.chunks_asked


def test_without_a_need_every_chunk_is_asked_and_a_need_past_the_sample_stops_at_it():
    everything = generate_enough(Generator(), SAMPLE, needed=None, queries_per_chunk=2, seed=0)
    assert everything.chunks_asked == 100 and len(everything.kept) == 100
    generate = Generator()
    short = generate_enough(generate, SAMPLE, needed=500, queries_per_chunk=2, seed=0)
    assert short.chunks_asked == 100 and len(short.kept) == 100 and generate.rounds[-1] == 100
