from pathlib import Path

import pytest
import torch

from embtune_pipeline.lib.models import load_model
from embtune_pipeline.lib.training.interpolation import interpolate_weights
from embtune_pipeline.lib.training.train import TrainSpec, train_model, validation_steps
from embtune_pipeline_tests.lib.training.rows import mixed, pairs


def _spec(tiny_model, **kw) -> TrainSpec:
    args = dict(epochs=1, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0, lora_rank=4, save_steps=2, seed=0)
    return TrainSpec(tiny_model, 32, **{**args, **kw})


def _train(tiny_model, tmp_path, **kw):
    return train_model(_spec(tiny_model, **kw), pairs(), tmp_path / "model", tmp_path / "ckpt")


def test_training_saves_a_loadable_model_that_changed(tiny_model, tmp_path):
    result = _train(tiny_model, tmp_path, matryoshka_dims=[16, 8])
    assert result.steps == 3 and result.loss_history
    assert result.used == {"batch_size": 8, "save_steps": 2, "processes": 1, "max_steps": -1,
                           "loss": "MatryoshkaLoss", "precision": "fp32"} and result.peak_rss_mb > 0
    small = train_model(_spec(tiny_model, batch_size=64), pairs(), tmp_path / "small", tmp_path / "ckpt-small")
    assert small.used["batch_size"] == 24  # never larger than the data: what MLflow logs as used_batch_size
    base, tuned = load_model(tiny_model), load_model(result.model_dir)
    a, b = base.encode(["jaguar reset"]), tuned.encode(["jaguar reset"])
    assert a.shape == b.shape == (1, 32) and abs(a - b).max() > 1e-4
    assert (tmp_path / "ckpt" / "checkpoint-2").is_dir()


def test_bfloat16_training_keeps_float32_weights_that_learned(tiny_model, tmp_path):
    from safetensors.torch import load_file

    result = _train(tiny_model, tmp_path, precision="bf16")
    assert result.used["precision"] == "bf16" and all(torch.isfinite(torch.tensor(loss)) for _, loss in
                                                      result.loss_history)
    weights = load_file(next(result.model_dir.rglob("model.safetensors")))
    assert {w.dtype for w in weights.values()} == {torch.float32}  # autocast computes in bf16, stores fp32
    base, tuned = load_model(tiny_model), load_model(result.model_dir)
    assert abs(base.encode(["jaguar reset"]) - tuned.encode(["jaguar reset"])).max() > 1e-4


def test_auto_precision_is_bfloat16_where_the_hardware_computes_in_it(monkeypatch):
    from embtune_pipeline.lib.training import train
    from embtune_pipeline.lib.training.train import mixed_precision

    assert mixed_precision("fp32", cuda=True) == "fp32" and mixed_precision("bf16", cuda=False) == "bf16"
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: True)
    assert mixed_precision("auto", cuda=False) == "bf16"
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)
    assert mixed_precision("auto", cuda=False) == "fp32"


def test_a_cpu_computes_in_bfloat16_when_linux_lists_avx512_bf16_or_amx(tmp_path):
    from embtune_pipeline.lib.training.train import cpu_has_bf16

    def cpu(flags: str) -> Path:
        path = tmp_path / f"cpuinfo-{flags.replace(' ', '-')}"  # a file per flag list
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
        return path

    assert cpu_has_bf16(cpu("avx512f avx512_bf16")) and cpu_has_bf16(cpu("amx_tile amx_bf16"))
    assert not cpu_has_bf16(cpu("avx512f avx512_vnni")) and not cpu_has_bf16(tmp_path / "missing")


def test_scores_outside_the_trainer_run_in_its_precision_and_on_the_cores_waiting_ranks_leave():
    import os

    from embtune_pipeline.lib.training.train import scoring_outside_trainer

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # what each of two ranks gets on two cores
    try:
        with scoring_outside_trainer("bf16", world=2, cuda=False):
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
            assert torch.get_num_threads() == os.cpu_count()
        assert not torch.is_autocast_enabled("cpu") and torch.get_num_threads() == 1
        with scoring_outside_trainer("fp32", world=1, cuda=False):  # one process has every core already
            assert not torch.is_autocast_enabled("cpu") and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_training_reports_progress_and_live_metrics(tiny_model, tmp_path):
    from embtune_pipeline.lib.progress import Reporter
    from embtune_pipeline.lib.training.validation import split_validation

    split = split_validation(pairs(120).assign(source="qa_pairs"), 0.25, 100, 10, 80, seed=0)
    lines, metrics = [], []
    result = train_model(_spec(tiny_model, save_steps=100), split.train_rows[["anchor", "positive", "negative_1"]],
                         tmp_path / "model", tmp_path / "ckpt", split.validation, Reporter(lines.append, every=0),
                         on_metrics=lambda step, m: metrics.append((step, m)))
    assert len(lines) == result.steps and lines[0].startswith(f"training step 1/{result.steps} ")
    assert lines[-1].startswith(f"training step {result.steps}/{result.steps} (100%), epoch 1.00, loss ")
    assert "validation nDCG@10 0." in lines[-1] and "ETA" in lines[0] and "ETA" not in lines[-1]
    said = [line for line in lines if "validation nDCG@10" in line]  # each score once, with the step it measured
    measured = [(s, m["validation_ndcg@10"]) for s, m in metrics if "validation_ndcg@10" in m and s > 0]  # not the base
    assert len(said) == len(measured) and said[-1].endswith(
        f"validation nDCG@10 {measured[-1][1]:.4f} (step {measured[-1][0]}), elapsed " + said[-1].split("elapsed ")[1])
    assert metrics[0] == (0, {"validation_ndcg@10": result.validation["base_score"]})  # the base, before step 1
    losses = [(s, m["train_loss"]) for s, m in metrics if "train_loss" in m]
    assert losses == result.loss_history
    assert [(s, m["validation_ndcg@10"]) for s, m in metrics[1:] if "validation_ndcg@10" in m] == \
        result.validation["scores"]


def test_a_rerun_resumes_from_the_last_checkpoint(tiny_model, tmp_path):
    _train(tiny_model, tmp_path)
    again = _train(tiny_model, tmp_path)
    assert again.resumed_from and again.resumed_from.endswith("checkpoint-3")


def _step(checkpoint) -> int:
    return int(str(checkpoint).rsplit("-", 1)[-1])


@pytest.mark.parametrize("name,cut", [("trainer_state.json", False), ("model.safetensors", False),
                                      ("model.safetensors", True), ("trainer_state.json", True)])
def test_a_rerun_resumes_from_the_newest_complete_checkpoint_and_sets_a_torn_one_aside(tiny_model, tmp_path, name,
                                                                                       cut, caplog):
    """A kill or a full disk mid-save leaves checkpoint-N without the files a resume reads, or with one cut
    short; the rerun resumes from the one before and keeps the torn folder aside, not in its way."""
    _train(tiny_model, tmp_path, epochs=2, save_steps=1)  # 6 steps; checkpoints 5 and 6 kept
    torn = tmp_path / "ckpt" / "checkpoint-6"
    if cut:
        data = (torn / name).read_bytes()
        (torn / name).write_bytes(data[: len(data) // 2])  # what a full disk leaves
    else:
        (torn / name).unlink()
    torn_files = sorted(p.name for p in torn.iterdir())
    with caplog.at_level("WARNING"):
        again = _train(tiny_model, tmp_path, epochs=2, save_steps=1)
    assert again.steps == 6 and again.resumed_from.endswith("checkpoint-5")
    redone = _step(torn) - _step(again.resumed_from)
    assert redone == 1  # at most save_steps: the torn checkpoint's steps, no more
    [aside] = again.set_aside
    assert Path(aside).name.startswith("incomplete-checkpoint-6-") and sorted(p.name for p in Path(aside).iterdir()) \
        == torn_files  # nothing produced is lost
    assert any(aside in r.getMessage() and name in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert (torn / "trainer_state.json").is_file()  # the rerun saved step 6 again, whole
    assert _train(tiny_model, tmp_path, epochs=2, save_steps=1).resumed_from.endswith("checkpoint-6")


KILLED_TRAINING = """
import sys
from pathlib import Path
from embtune_pipeline_tests.lib.training.test_train import _train
_train(Path(sys.argv[1]), Path(sys.argv[2]), epochs=2, save_steps=1)
"""


def test_a_training_killed_mid_save_reruns_unattended_to_the_end(tiny_model, tmp_path):
    """The real fault: kill -9 as checkpoint-4's folder appears (the trainer writes into it file by file,
    trainer_state.json last), then a plain rerun."""
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[3]
    torn = tmp_path / "ckpt" / "checkpoint-4"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_TRAINING, str(tiny_model), str(tmp_path)], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not torn.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert torn.is_dir(), err.decode(errors="replace")[-2000:]
    assert not (torn / "trainer_state.json").exists()  # killed mid-save: the torn folder the issue met
    again = _train(tiny_model, tmp_path, epochs=2, save_steps=1)
    assert again.steps == 6 and again.resumed_from.endswith("checkpoint-3")
    assert _step(torn) - _step(again.resumed_from) == 1  # steps redone
    assert [Path(p).name.split("-")[:3] for p in again.set_aside] == [["incomplete", "checkpoint", "4"]]


def test_a_torn_best_checkpoint_is_never_the_one_validation_keeps(tiny_model, tmp_path):
    """When the best checkpoint the resumed state names is torn, it is set aside and forgotten: the selection
    neither claims its score nor keeps the last weights under its name."""
    import json

    from embtune_pipeline.lib.training.validation import ValidationScorer, split_validation

    split = split_validation(pairs(120).assign(source="qa_pairs"), 0.25, 100, 10, 80, seed=0)
    spec = _spec(tiny_model, epochs=2, save_steps=100, interpolation_alphas=(1.0,), learning_rate=3e-3)
    rows = split.train_rows[["anchor", "positive", "negative_1"]]
    first = train_model(spec, rows, tmp_path / "model", tmp_path / "ckpt", validation=split.validation)
    last = tmp_path / "ckpt" / f"checkpoint-{first.steps}"
    best = Path(json.loads((last / "trainer_state.json").read_text())["best_model_checkpoint"])
    assert best != last and _step(best) == first.validation["best_step"]  # a best before the last step
    weights = (best / "model.safetensors").read_bytes()
    (best / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    again = train_model(spec, rows, tmp_path / "again", tmp_path / "ckpt", validation=split.validation)
    assert again.resumed_from.endswith(last.name) and again.validation["best_step"] != _step(best)
    assert [Path(p).name.split("-")[:3] for p in again.set_aside] == [["incomplete", "checkpoint", str(_step(best))]]
    saved = ValidationScorer(split.validation).score(load_model(again.model_dir, max_seq_length=32))
    assert abs(saved - again.validation["alpha_scores"]["1.0"]) < 1e-4  # the score claimed is the saved model's


def test_lora_is_merged_into_a_plain_model(tiny_model, tmp_path):
    result = _train(tiny_model, tmp_path, lora=True)
    files = {p.name for p in result.model_dir.rglob("*")}
    assert "adapter_config.json" not in files
    tuned = load_model(result.model_dir)
    assert not any("lora" in n for n, _ in tuned.named_parameters())
    assert abs(tuned.encode(["x"]) - load_model(tiny_model).encode(["x"])).max() > 1e-5


def test_interpolated_weights_lie_between_base_and_tuned(tiny_model, tmp_path):
    tuned = load_model(tiny_model)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(1.0)
    tuned.save(str(tmp_path / "tuned"))
    half = load_model(interpolate_weights(tiny_model, tmp_path / "tuned", 0.25, tmp_path / "mix"))
    base = load_model(tiny_model)
    for (name, b), m in zip(base.state_dict().items(), half.state_dict().values()):
        if b.is_floating_point():
            assert torch.allclose(m, b + 0.25, atol=1e-5), name
    with pytest.raises(ValueError, match="alpha"):
        interpolate_weights(tiny_model, tmp_path / "tuned", 1.5, tmp_path / "bad")


@pytest.mark.parametrize("lora", [False, True])
def test_validation_keeps_the_best_checkpoint_and_ratio(tiny_model, tmp_path, lora):
    from embtune_pipeline.lib.training.validation import split_validation

    rows = pairs(120).assign(source="qa_pairs")
    split = split_validation(rows, 0.25, 100, 10, 80, seed=0)
    spec = _spec(tiny_model, epochs=2, lora=lora, save_steps=100, interpolation_alphas=(0.5, 0.0))
    result = train_model(spec, split.train_rows[["anchor", "positive", "negative_1"]], tmp_path / "model",
                         tmp_path / "ckpt", validation=split.validation)
    chosen = result.validation
    scores = dict(chosen["scores"])
    assert len(scores) == 4 and max(scores) == result.steps  # two per epoch, the last at the end
    assert scores[chosen["best_step"]] == max(scores.values())
    assert abs(chosen["alpha_scores"]["1.0"] - scores[chosen["best_step"]]) < 1e-4  # the best checkpoint loaded
    assert set(chosen["alpha_scores"]) == {"1.0", "0.5", "0.0"}
    assert chosen["alpha_scores"][str(chosen["alpha"])] == max(chosen["alpha_scores"].values())
    from embtune_pipeline.lib.training.validation import ValidationScorer

    # alpha 0 is the base: its reused score is what the untouched base model scores
    base = ValidationScorer(split.validation).score(load_model(tiny_model, max_seq_length=32))
    assert abs(chosen["alpha_scores"]["0.0"] - base) < 1e-4 and chosen["base_score"] == chosen["alpha_scores"]["0.0"]
    # the saved model is the chosen one: it scores what the selection said
    saved = ValidationScorer(split.validation).score(load_model(result.model_dir, max_seq_length=32))
    assert abs(saved - chosen["alpha_scores"][str(chosen["alpha"])]) < 1e-4


@pytest.mark.parametrize("loss_name,mini_batch_size", [("gist", 0), ("gist", 4), ("mnrl", 4)])
def test_guided_and_cached_losses_train(tiny_model, tmp_path, loss_name, mini_batch_size):
    result = _train(tiny_model, tmp_path, loss=loss_name, mini_batch_size=mini_batch_size,
                    matryoshka_dims=[16])
    assert result.steps == 3 and all(loss == loss for _, loss in result.loss_history)  # no NaN
    tuned = load_model(result.model_dir)
    assert abs(tuned.encode(["jaguar reset"]) - load_model(tiny_model).encode(["jaguar reset"])).max() > 1e-4


def test_an_unknown_loss_is_refused(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="unknown loss 'triplet'"):
        _train(tiny_model, tmp_path, loss="triplet")


def test_balanced_training_is_paced_by_the_real_pairs(tiny_model, tmp_path):
    from embtune_pipeline.lib.training.validation import split_validation

    split = split_validation(mixed(120, 400), 0.25, 100, 10, 80, seed=0)
    assert split.validation.source == "real"
    n_real = int((split.train_rows["source"] != "synthetic").sum())
    result = train_model(_spec(tiny_model, epochs=2, save_steps=100), split.train_rows, tmp_path / "model",
                         tmp_path / "ckpt", validation=split.validation)
    assert result.epoch_pairs == 2 * n_real < len(split.train_rows)
    assert result.steps == 2 * 2 * -(-n_real // 8)  # 2 epochs of a real batch then a synthetic one
    # without real validation queries the balance is not applied: every pair trains each epoch
    plain = train_model(_spec(tiny_model, save_steps=100), split.train_rows, tmp_path / "plain", tmp_path / "ckpt2")
    assert plain.epoch_pairs == len(split.train_rows) and plain.steps == -(-len(split.train_rows) // 8)


def test_with_validation_a_checkpoint_comes_at_least_every_save_steps():
    assert validation_steps(epoch_batches=100, evaluations_per_epoch=2, save_steps=200) == 50  # as asked
    assert validation_steps(epoch_batches=1000, evaluations_per_epoch=2, save_steps=200) == 200  # not 500
    assert validation_steps(epoch_batches=1, evaluations_per_epoch=4, save_steps=200) == 1


def test_two_processes_under_torchrun_train_with_gloo_and_rank_0_alone_writes(tiny_model, tmp_path):
    """Data-parallel on CPU: the step's process hears rank 0's progress and metrics live, gets one result, and
    finds one model and the trainer's checkpoints, as a training in one process leaves them."""
    from embtune_pipeline.lib.progress import Reporter
    from embtune_pipeline.lib.training.validation import split_validation

    split = split_validation(pairs(160).assign(source="qa_pairs"), 0.25, 100, 10, 80, seed=0)
    lines, metrics = [], []
    spec = _spec(tiny_model, epochs=2, processes=2, save_steps=100, precision="bf16")  # gloo takes use_cpu once
    result = train_model(spec, split.train_rows[["anchor", "positive", "negative_1"]], tmp_path / "model",
                         tmp_path / "ckpt", split.validation, Reporter(lines.append, every=0),
                         on_metrics=lambda step, m: metrics.append((step, m)))
    assert result.used == {"batch_size": 8, "save_steps": result.used["save_steps"], "processes": 2,
                           "max_steps": -1, "loss": "MultipleNegativesRankingLoss", "precision": "bf16"}
    # full batches of 8 (the last short one dropped), each split across the 2 ranks
    assert result.steps == 2 * (len(split.train_rows) // 8) and result.epoch_pairs == len(split.train_rows)
    losses = [loss for _, loss in result.loss_history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns
    assert [(s, m["train_loss"]) for s, m in metrics if "train_loss" in m] == result.loss_history  # relayed live
    assert lines[-1].startswith(f"training step {result.steps}/{result.steps} (100%)")
    chosen = result.validation  # the best checkpoint and ratio chosen, as in one process
    assert chosen["scores"] and chosen["alpha_scores"][str(chosen["alpha"])] == max(chosen["alpha_scores"].values())
    tuned = load_model(result.model_dir)
    assert abs(tuned.encode(["jaguar reset"]) - load_model(tiny_model).encode(["jaguar reset"])).max() > 1e-4
    assert {p.name for p in (tmp_path / "ckpt").glob("checkpoint-*")} and result.peak_rss_mb > 0
    again = train_model(spec, split.train_rows[["anchor", "positive", "negative_1"]], tmp_path / "model",
                        tmp_path / "ckpt", split.validation)  # a rerun: every rank resumes from the last checkpoint
    assert again.resumed_from and again.resumed_from.endswith(f"checkpoint-{result.steps}")


def test_ranks_split_the_batches_one_process_would_train(tiny_model, tmp_path):
    """Under torchrun each step's global batch is a batch one process draws, split across the ranks: one source
    (training_data: a generated query is no in-batch negative for a user's) and no duplicate across the ranks.
    Taking whole batches in turn, one rank got every real batch and the other every synthetic one."""
    from accelerate.data_loader import BatchSamplerShard
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers, MultiDatasetBatchSamplers

    from embtune_pipeline.lib.training.data import training_data
    from embtune_pipeline.lib.training.train import _data_parallel

    rows = mixed(40, 80)
    dataset, _, _ = training_data(rows, 8, True)
    args = SentenceTransformerTrainingArguments(str(tmp_path), per_device_train_batch_size=8, report_to="none",
                                                batch_sampler=BatchSamplers.NO_DUPLICATES,
                                                multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN)
    trainer = SentenceTransformerTrainer(model=load_model(tiny_model), args=args, train_dataset=dataset)
    one_process = trainer.get_train_dataloader().batch_sampler  # the batches of a training in one process
    split = _data_parallel(2, cuda=False)["accelerator_config"]["split_batches"]
    ranks = [list(BatchSamplerShard(one_process, num_processes=2, process_index=r, split_batches=split,
                                    even_batches=False)) for r in range(2)]
    steps = [a + b for a, b in zip(*ranks)]
    assert steps == list(one_process) and len(steps) == 10  # 5 real batches of 8, each with a synthetic one
    texts = [row for _, d in dataset.items() for row in d["anchor"]]  # the ConcatDataset's order: real first
    for step in steps:
        assert len({texts[i].startswith("how do I reset") for i in step}) == 1  # one source a step
        assert len({texts[i] for i in step}) == len(step)


def test_a_failed_distributed_launch_raises_with_the_tail_of_its_log(tmp_path):
    absent = tmp_path / "no-such-model"
    with pytest.raises(RuntimeError, match=r"distributed training \(2 processes\) exited with 1[\s\S]*no-such-model"):
        train_model(_spec(absent, processes=2), pairs(), tmp_path / "model", tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "launch" / "torchrun.log").exists()


def _margins(model_dir, rows):
    """The model's cosine(anchor, positive) minus cosine(anchor, negative_1), per row."""
    model = load_model(model_dir)
    a, p, n = (model.encode(rows[c].tolist(), normalize_embeddings=True) for c in ("anchor", "positive", "negative_1"))
    return (a * p).sum(axis=1) - (a * n).sum(axis=1)


# a teacher that prefers each row's negative to its positive, as scores and as vectors (the anchor's vector is
# the negative's, the positive's is orthogonal to both)
TEACHER_VECTORS = [[1.0, 0, 0, 0, 0, 1.0, 0, 0, 1.0, 0, 0, 0]] * 32


@pytest.mark.parametrize("loss", ["batch_kl", "kl", "margin_mse"])
def test_the_student_learns_the_teachers_judgments(tiny_model, tmp_path, loss):
    # distillation alone must move the student's margins the teacher's way, against what contrastive training
    # on the same rows does
    rows = pairs(32).assign(teacher_scores=[[0.2, 0.8]] * 32, teacher_vectors=TEACHER_VECTORS)
    result = train_model(_spec(tiny_model, epochs=3, distill_loss=loss, distill_weight=1.0), rows,
                         tmp_path / "model", tmp_path / "ckpt")
    assert result.used["loss"] == "MixedLoss"
    assert _margins(result.model_dir, rows).mean() < _margins(tiny_model, rows).mean() - 0.05


def test_without_a_teacher_the_same_rows_train_the_other_way(tiny_model, tmp_path):
    contrastive = train_model(_spec(tiny_model, epochs=3), pairs(32), tmp_path / "c", tmp_path / "ckpt-c")
    assert contrastive.used["loss"] == "MultipleNegativesRankingLoss"
    assert _margins(contrastive.model_dir, pairs(32)).mean() > _margins(tiny_model, pairs(32)).mean()


def test_mixed_distillation_reads_one_forward_pass_and_weighs_both_losses(tiny_model):
    import torch

    from embtune_pipeline.lib.training.losses import Distillation, training_loss

    model = load_model(tiny_model)
    rows = pairs(4)
    features = [model.tokenize(rows[c].tolist()) for c in ("anchor", "positive", "negative_1")]
    labels = torch.tensor([[0.9, 0.1]] * 4)
    losses = {w: float(training_loss(model, "mnrl", 0, tiny_model, 32, distillation=Distillation("kl", w))(
        features, labels)) for w in (0.0, 0.5, 1.0)}
    assert losses[0.5] == pytest.approx((losses[0.0] + losses[1.0]) / 2, rel=1e-4)
    assert losses[0.0] != pytest.approx(losses[1.0])


def test_a_step_budget_stops_training_before_the_epochs_are_done(tiny_model, tmp_path):
    from embtune_pipeline.lib.training.train import step_budget

    result = train_model(_spec(tiny_model, epochs=2, corpus_only_max_pairs=16), pairs(), tmp_path / "m", tmp_path / "c")
    assert result.steps == 2 and result.used["max_steps"] == 2  # 16 pairs at batch 8, of 6 steps in 2 epochs
    real = train_model(_spec(tiny_model, epochs=2, corpus_only_max_pairs=16), pairs().assign(source="qa_pairs"),
                       tmp_path / "r", tmp_path / "cr")
    assert real.steps == 6 and real.used["max_steps"] == -1  # real pairs: no budget
    assert step_budget(0, 8, 3, 2.0) == -1 and step_budget(100, 8, 3, 2.0) == -1  # no budget; the epochs end first


def test_auto_takes_gist_for_corpus_only_training_and_mnrl_with_real_pairs(tiny_model, tmp_path):
    from embtune_pipeline.lib.training.train import contrastive_name

    assert contrastive_name("auto", has_real_pairs=False) == "gist"
    assert contrastive_name("auto", has_real_pairs=True) == "mnrl"
    assert contrastive_name("mnrl", has_real_pairs=False) == "mnrl"
    synthetic = _train(tiny_model, tmp_path / "s", loss="auto")
    assert synthetic.used["loss"] == "GISTEmbedLoss"
    real = train_model(_spec(tiny_model, loss="auto"), pairs().assign(source="click_logs"), tmp_path / "r",
                       tmp_path / "rc")
    assert real.used["loss"] == "MultipleNegativesRankingLoss"


def test_the_saved_model_is_the_kept_checkpoint_and_weight_mix():
    from embtune_pipeline.lib.training.interpolation import saved_validation

    chosen = {"alpha": 0.75, "alpha_scores": {"1.0": 0.70, "0.75": 0.72, "0.5": 0.69}, "best_step": 8,
              "scores": [(4, 0.66), (8, 0.70), (12, 0.68)], "base_score": 0.6}
    saved = saved_validation(chosen)
    assert (saved.step, saved.alpha, saved.score) == (8, 0.75, 0.72)  # not step 12, the last one measured
    assert saved.label == "saved model (step 8, mixed with the base: 0.75 tuned)"
    assert saved_validation({**chosen, "alpha": 1.0}).label == "saved model (step 8)"
    assert saved_validation({}) is None
