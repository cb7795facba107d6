import pytest
import yaml

from embtune_pipeline.settings import DEMO_CONFIG, SettingsError, load_settings


def _write(tmp_path, data):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_bundled_demo_loads_and_data_dir_defaults_under_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("EMBTUNE_CONFIG", raising=False)
    monkeypatch.delenv("EMBTUNE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.source_file == DEMO_CONFIG.resolve()
    assert s.corpus.format == "python-docs" and s.data_dir == tmp_path / "embtune-data"
    assert s.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'embtune-data' / 'mlflow.db'}"


def test_relative_paths_resolve_against_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBTUNE_DATA_DIR", raising=False)
    (tmp_path / "docs").mkdir()
    s = load_settings(_write(tmp_path, {"data_dir": "out", "corpus": {"path": "docs", "format": "dir"}}))
    assert s.corpus.path == tmp_path / "docs" and s.data_dir == tmp_path / "out"
    monkeypatch.setenv("EMBTUNE_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings(tmp_path / "s.yaml").data_dir == tmp_path / "elsewhere"


def test_beir_corpus_brings_its_qa_pairs_and_eval_set(jaguar_beir, tmp_path):
    s = load_settings(_write(tmp_path, {"corpus": {"path": str(jaguar_beir), "format": "beir"}}))
    assert s.qa_pairs.split == "train" and s.eval_set.split == "test" and s.corpus.id_col == "_id"
    s = load_settings(_write(tmp_path, {"corpus": {"path": str(jaguar_beir), "format": "beir"}, "qa_pairs": None}))
    assert s.qa_pairs is None and s.eval_set is not None


@pytest.mark.parametrize("data, message", [
    ({"corpus": {"format": "jsonl"}}, "corpus: Value error, corpus.path is required"),
    ({"corpus": {"format": "xml", "path": "."}}, "corpus.format: Input should be"),
    ({"corpus": {"format": "dir", "path": "."}, "epochs": 3}, "epochs: Extra inputs are not permitted"),
    ({"corpus": {"format": "dir", "path": "."}, "run": {"train": {"batch_size": 1}}},
     "run.train.batch_size: Input should be greater than or equal to 2"),
    ({"corpus": {"format": "dir", "path": "."}, "generator": {"params": {"api_key": "sk-1"}}},
     "look like secrets"),
    ({"corpus": {"format": "dir", "path": "."}, "generator": {"params": {"extra_headers": {"Authorization": "x"}}}},
     "['extra_headers.Authorization'] look like secrets"),
    ({"corpus": {"format": "dir", "path": ".", "chunk_tokens": 300}}, "must be at most run.embed.max_seq_length"),
    ({"corpus": {"format": "dir", "path": "."}, "run": {"mining": {"rank_start": 9, "rank_end": 9}}},
     "run.mining: Value error, rank_start (9) must be below rank_end (9)"),
    ({"corpus": {"format": "dir", "path": "missing"}}, "corpus.path: no such file or directory"),
    ({"corpus": {"format": "dir", "path": "."}, "baselines": ["openai/a", {"model": "x", "label": "openai/a"}]},
     "baselines ['openai/a', 'openai/a'] repeat a name"),
    ({"corpus": {"format": "dir", "path": "."}, "eval_set_builder": {"params": {"api_key": "sk-1"}}},
     "eval_set_builder.params ['api_key'] look like secrets"),
    ({"corpus": {"format": "dir", "path": "."}, "executor": "k8s", "k8s": {"image": "embtune:1", "gpus_per_step": 2},
      "run": {"train": {"processes": 4}}},
     "run.train.processes (4) must equal k8s.gpus_per_step (2)"),
    ({"corpus": {"format": "dir", "path": "."}, "indexes": [{"name": "docs"}, {"name": "docs", "keep": 1}]},
     "indexes: Value error, the name(s) ['docs'] appear more than once"),
    ({"corpus": {"format": "dir", "path": "."}, "indexes": [{"name": "Docs Prod"}]},
     "indexes.0.name: String should match pattern"),
    ({"corpus": {"format": "dir", "path": "."}, "indexes": [{"name": "docs", "rollout": "nightly"}]},
     "indexes.0.rollout: Input should be 'auto' or 'manual'"),
    ({"corpus": {"format": "dir", "path": "."}, "indexes": [{"name": "docs", "keep": -1}]},
     "indexes.0.keep: Input should be greater than or equal to 0"),
])
def test_errors_name_the_file_and_the_key(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_baselines_are_model_strings_or_local_directories_relative_to_the_file(tmp_path, tiny_model):
    import shutil

    shutil.copytree(tiny_model, tmp_path / "our-embedder")
    (tmp_path / "log.txt").write_text("a query\n")
    s = load_settings(_write(tmp_path, {
        "corpus": {"format": "dir", "path": "."}, "eval_set_builder": {"queries": "log.txt", "judge": "smollm2"},
        "baselines": ["openai/text-embedding-3-small", "our-embedder",
                      {"model": "cohere/embed-english-v3.0", "query_params": {"input_type": "search_query"}}]}))
    api, local, cohere = s.baselines
    assert (api.name, api.is_local, api.params) == ("openai/text-embedding-3-small", False, {})
    assert (local.name, local.is_local, local.model) == ("our-embedder", True, str(tmp_path / "our-embedder"))
    assert cohere.query_params == {"input_type": "search_query"} and s.baselines_budget_usd == 5.0
    assert s.eval_set_builder.queries == tmp_path / "log.txt" and s.eval_set_builder.pool_size == 10


def test_a_teacher_is_a_model_string_or_a_local_directory_relative_to_the_file(tmp_path, tiny_model,
                                                                              tiny_cross_encoder):
    import shutil

    shutil.copytree(tiny_model, tmp_path / "big-embedder")
    shutil.copytree(tiny_cross_encoder, tmp_path / "reranker")
    corpus = {"format": "dir", "path": "."}
    assert load_settings(_write(tmp_path, {"corpus": corpus})).teacher is None
    local = load_settings(_write(tmp_path, {"corpus": corpus, "teacher": "big-embedder"})).teacher
    assert (local.model, local.is_local, local.is_cross_encoder) == (str(tmp_path / "big-embedder"), True, False)
    ce = load_settings(_write(tmp_path, {"corpus": corpus, "teacher": {"model": "reranker"}})).teacher
    assert ce.is_cross_encoder and ce.budget_usd == 5.0
    api = load_settings(_write(tmp_path, {"corpus": corpus, "teacher": {
        "model": "voyage/voyage-3", "query_params": {"input_type": "query"}, "budget_usd": 2}})).teacher
    assert (api.is_local, api.is_cross_encoder, api.budget_usd) == (False, False, 2.0)
    with pytest.raises(SettingsError, match="look like secrets"):
        load_settings(_write(tmp_path, {"corpus": corpus, "teacher": {
            "model": "openai/text-embedding-3-large", "params": {"api_key": "sk-live-0123456789abcdef"}}}))


def test_missing_settings_file(tmp_path):
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_llm_params_that_are_not_secrets_are_accepted(tmp_path):
    s = load_settings(_write(tmp_path, {"corpus": {"format": "dir", "path": "."},
                                        "generator": {"model": "smollm2", "params": {"max_tokens": 64}}}))
    assert s.generator.params == {"max_tokens": 64}


def test_base_models_are_partitions_named_by_their_last_path_part(tmp_path):
    corpus = {"format": "python-docs"}
    model = tmp_path / "models" / "My_Model.v2"
    model.mkdir(parents=True)
    s = load_settings(_write(tmp_path, {"corpus": corpus, "base_model": f"{model}/"}))
    assert s.base_models == [f"{model}/"] and s.base_model_keys == ["my-model-v2"]
    assert s.base_model_ref("my-model-v2") == f"{model}/"
    with pytest.raises(SettingsError, match="not in the settings' base_models"):
        s.base_model_ref("gone")
    with pytest.raises(SettingsError, match="same partition key twice"):
        load_settings(_write(tmp_path, {"corpus": corpus, "base_models": ["/a/minilm", "/b/MiniLM"]}))
    with pytest.raises(SettingsError, match="base_model and base_models are both set"):
        load_settings(_write(tmp_path, {"corpus": corpus, "base_model": "x", "base_models": ["y"]}))


def test_every_missing_path_is_named_in_one_error_by_key(tmp_path):
    """Copied from an example with only the corpus changed, a settings file fails once, naming every path that
    is not there (inputs, the teacher, baselines, the eval-set builder's log), not one per attempt."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "models").mkdir()
    path = _write(tmp_path, {
        "corpus": {"format": "dir", "path": "docs"},
        "click_logs": {"path": "clicks.csv"}, "qa_pairs": {"path": "faq.jsonl"}, "eval_set": {"path": "labelled.csv"},
        "monitoring": {"eval_set": {"path": "fresh_labelled.csv"}},
        "teacher": "models/teacher", "baselines": ["openai/text-embedding-3-small", {"model": "./our-embedder"}],
        "base_models": ["all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5"],
        "eval_set_builder": {"queries": "search_log.txt"}})
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"invalid settings file {path}:")
    for key, missing in [("click_logs.path", "clicks.csv"), ("qa_pairs.path", "faq.jsonl"),
                         ("eval_set.path", "labelled.csv"), ("monitoring.eval_set.path", "fresh_labelled.csv"),
                         ("teacher", "models/teacher"), ("baselines[1].model", "our-embedder"),
                         ("eval_set_builder.queries", "search_log.txt")]:
        assert f"  {key}: " in message and str(tmp_path / missing) in message, (key, message)
    # model names and hosted models are not paths; the corpus is there
    assert "corpus.path" not in message and "base_models" not in message and "baselines[0]" not in message


def test_missing_paths_are_named_beside_schema_errors(tmp_path):
    path = _write(tmp_path, {"corpus": {"format": "dir", "path": "docs"}, "eval_set": {"path": "labelled.csv"},
                             "epochs": 3})
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert "epochs: Extra inputs are not permitted" in message
    assert f"corpus.path: no such file or directory: {tmp_path / 'docs'}" in message
    assert f"eval_set.path: no such file or directory: {tmp_path / 'labelled.csv'}" in message


def test_a_beir_folder_missing_its_files_is_named(tmp_path):
    (tmp_path / "beir" / "qrels").mkdir(parents=True)
    (tmp_path / "beir" / "queries.jsonl").write_text("")
    path = _write(tmp_path, {"corpus": {"format": "dir", "path": "."},
                             "eval_set": {"path": "beir", "split": "test"}})
    with pytest.raises(SettingsError, match=r"eval_set.path: format beir reads queries.jsonl and qrels/test.tsv "
                                            r"from .*beir; missing: qrels/test.tsv"):
        load_settings(path)


def test_the_demo_spells_the_base_model_key_as_documented():
    import yaml as _yaml

    raw = _yaml.safe_load(DEMO_CONFIG.read_text())
    assert "base_models" in raw and "base_model" not in raw


def test_indexes_default_to_a_folder_under_data_dir_and_resolve_relative_uris(tmp_path):
    (tmp_path / "docs").mkdir()
    s = load_settings(_write(tmp_path, {"data_dir": "out", "corpus": {"path": "docs", "format": "dir"},
                                        "indexes": [{"name": "docs"}, {"name": "faq", "uri": "vectors/faq",
                                                                       "rollout": "auto", "keep": 1},
                                                    {"name": "remote", "uri": "s3://bucket/embtune"}]}))
    docs = s.index("docs")
    assert (docs.rollout, docs.keep, docs.ann_above_rows) == ("manual", 2, 100_000)
    assert s.index_uri("docs") == str(tmp_path / "out" / "indexes" / "docs" / "tables")
    assert s.index_uri("faq") == str(tmp_path / "vectors" / "faq")  # beside the settings file
    assert s.index_uri("remote") == "s3://bucket/embtune"  # an object store is left as written
    assert s.layout.index_pointer("remote") == tmp_path / "out" / "indexes" / "remote" / "pointer.json"
    with pytest.raises(SettingsError, match=r"no index 'nope' in the settings' indexes \(docs, faq, remote\)"):
        s.index("nope")


def test_the_demo_declares_one_manual_index():
    s = load_settings(DEMO_CONFIG)
    assert [(i.name, i.rollout) for i in s.indexes] == [("demo", "manual")]
