import json

import numpy as np
import pytest

from embtune_pipeline.lib.embeddings import EXPORT_DIR, EmbeddingStore, backend_of, model_if_needed
from embtune_pipeline.lib.encoders import (
    AGREEMENT,
    EXPORT_RECORD,
    INT8_FILE,
    INT8_RECIPE,
    INT8_RECIPE_NAME,
    ExportedEncoder,
    agreement_sample,
    choose_encoder,
    export_onnx,
    least_cosine,
    quantize_int8,
    recipe_name,
    runtime_key,
)
from embtune_pipeline.lib.models import load_model

TEXTS = ["a", "jaguar", "The Jaguar product line ships in the third quarter.",
         "cells divide " * 80,  # longer than max_seq_length: cut by every backend alike
         "Quarterly revenue of the Jaguar line, by region and channel.", "x y z"]


@pytest.fixture(scope="module")
def export(tiny_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export")
    export_onnx(load_model(tiny_model, 64), directory)
    return directory


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_the_exported_model_agrees_with_pytorch_on_every_text(tiny_model, export, runtime):
    expected = load_model(tiny_model, 64).encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    vectors = ExportedEncoder(export, runtime).encode(TEXTS, batch_size=4, normalize_embeddings=True)
    assert vectors.shape == expected.shape
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() >= AGREEMENT, cosines
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_the_int8_export_computes_its_matmuls_in_int8_and_stays_close(tiny_model, export):
    import onnx

    path = quantize_int8(export)
    expected = load_model(tiny_model, 64).encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    vectors = ExportedEncoder(export, "onnx", path.name).encode(TEXTS, normalize_embeddings=True)
    graph = onnx.load(str(path)).graph
    weights = {w.name for w in graph.initializer}
    assert "MatMulInteger" in [node.op_type for node in graph.node]
    assert not [node.name for node in graph.node if node.op_type == "MatMul" and set(node.input) & weights]
    assert least_cosine(vectors, expected) > 0.98, least_cosine(vectors, expected)


def test_an_int8_file_of_another_recipe_is_made_again(tiny_model, tmp_path):
    export_onnx(load_model(tiny_model, 64), tmp_path)
    (tmp_path / INT8_FILE).write_bytes(b"made by an earlier recipe")
    quantize_int8(tmp_path)
    assert json.loads((tmp_path / EXPORT_RECORD).read_text())["int8_recipe"] == INT8_RECIPE_NAME
    made = (tmp_path / INT8_FILE).stat().st_mtime_ns
    quantize_int8(tmp_path)  # this recipe's file is kept
    assert (tmp_path / INT8_FILE).stat().st_mtime_ns == made
    assert ExportedEncoder(tmp_path, "onnx", INT8_FILE).encode(TEXTS).shape[0] == len(TEXTS)


def test_the_int8_recipe_is_named_by_every_argument_so_a_changed_one_is_made_again():
    assert INT8_RECIPE_NAME == "int8-matmul-per-channel"  # the name vectors cached so far carry
    changed = [{**INT8_RECIPE, "per_channel": False}, {**INT8_RECIPE, "weight_type": "QUInt8"},
               {**INT8_RECIPE, "op_types_to_quantize": ("MatMul", "Gather")}, {**INT8_RECIPE, "reduce_range": True}]
    names = [recipe_name(r) for r in changed]
    assert INT8_RECIPE_NAME not in names and len(set(names)) == len(names), names


def test_auto_takes_openvino_once_it_agrees_and_records_the_check(tiny_model, tmp_path):
    chosen = choose_encoder(tiny_model, 64, "auto", tmp_path, TEXTS)
    assert chosen.backend == "openvino" and chosen.least_cosine >= AGREEMENT
    record = json.loads((tmp_path / EXPORT_RECORD).read_text())
    assert record["agreement"][runtime_key("openvino")]["checked_on"] == len(TEXTS)
    exported_at = (tmp_path / "model.onnx").stat().st_mtime_ns
    again = choose_encoder(tiny_model, 64, "auto", tmp_path, TEXTS)
    assert again.backend == "openvino" and (tmp_path / "model.onnx").stat().st_mtime_ns == exported_at


def test_a_runtime_that_disagrees_is_refused_by_name_and_passed_over_by_auto(tiny_model, tmp_path):
    choose_encoder(tiny_model, 64, "onnx", tmp_path, TEXTS)  # exports and records a real check
    record = json.loads((tmp_path / EXPORT_RECORD).read_text())
    record["agreement"] = {runtime_key(r): {"least_cosine": 0.98} for r in ("onnx", "openvino")}
    (tmp_path / EXPORT_RECORD).write_text(json.dumps(record))
    with pytest.raises(RuntimeError, match="onnx.*least cosine 0.98.*embtune_export.json"):
        choose_encoder(tiny_model, 64, "onnx", tmp_path, TEXTS)
    fallback = choose_encoder(tiny_model, 64, "auto", tmp_path, TEXTS)
    assert fallback.backend == "torch" and "0.98" in fallback.reason
    assert choose_encoder(tiny_model, 64, "torch", tmp_path).backend == "torch"
    with pytest.raises(ValueError, match="unknown encoder backend 'tpu'"):
        choose_encoder(tiny_model, 64, "tpu", tmp_path)


def test_an_export_that_fails_leaves_pytorch_and_is_tried_again_next_time(tmp_path, tiny_model, monkeypatch):
    from embtune_pipeline.lib import encoders

    def untraceable(model, export_dir):
        raise RuntimeError("no tracer for this architecture")

    monkeypatch.setattr(encoders, "export_onnx", untraceable)
    chosen = choose_encoder(tiny_model, 64, "auto", tmp_path, TEXTS)
    assert chosen.backend == "torch" and "no tracer for this architecture" in chosen.reason
    assert not (tmp_path / EXPORT_RECORD).exists()  # a failure is not recorded: a fixed exporter gets its chance
    monkeypatch.undo()
    assert choose_encoder(tiny_model, 64, "auto", tmp_path, TEXTS).backend == "openvino"


def test_the_agreement_sample_takes_the_shortest_and_longest_texts():
    texts = [f"{'w ' * n}" for n in range(100)]
    sample = agreement_sample(texts, 6)
    assert sorted(map(len, sample)) == [0, 2, 4, 194, 196, 198]
    assert sorted(agreement_sample(["b", "a", "b"])) == ["a", "b"]  # distinct texts, each checked once


def test_a_store_filled_through_the_chosen_backend_holds_pytorchs_vectors(tiny_model, tmp_path):
    store = EmbeddingStore(tmp_path / "store")
    hashes = [f"h{i}" for i in range(len(TEXTS))]
    encoder = model_if_needed(store, hashes, tiny_model, 64, "auto", TEXTS)
    assert backend_of(encoder) == "openvino" and (store.root / EXPORT_DIR / "model.onnx").exists()
    store.fill(encoder, hashes, TEXTS, batch_size=4)
    expected = load_model(tiny_model, 64).encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    assert least_cosine(store.get(hashes), expected) >= AGREEMENT
    assert model_if_needed(store, hashes, tiny_model, 64, "auto", TEXTS) is None
