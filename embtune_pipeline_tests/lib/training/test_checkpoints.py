import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from embtune_pipeline.lib.training.checkpoints import ResumePoint, incomplete, resume_point


def _checkpoint(root, step):
    """A small checkpoint laid out as the trainer writes one: weights, a module's config, torch files, state."""
    folder = root / f"checkpoint-{step}"
    (folder / "1_Pooling").mkdir(parents=True)
    save_file({"w": torch.zeros(16, 16)}, str(folder / "model.safetensors"))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        torch.save({"step": step}, folder / name)
    for name in ("trainer_state.json", "modules.json", "1_Pooling/config.json"):
        (folder / name).write_text(json.dumps({"global_step": step}))
    return folder


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_each_way_a_save_is_torn_is_named(tmp_path):
    folder = _checkpoint(tmp_path, 1)
    assert incomplete(folder) is None
    for name, tear, problem in [("trainer_state.json", "unlink", "no trainer_state.json"),
                                ("scheduler.pt", "unlink", "no scheduler.pt"),
                                ("model.safetensors", "unlink", "no model.safetensors"),
                                ("model.safetensors", "cut", "model.safetensors cut short"),
                                ("optimizer.pt", "cut", "optimizer.pt cut short"),
                                ("1_Pooling/config.json", "cut", "1_Pooling/config.json cut short")]:
        torn = _checkpoint(tmp_path / name / tear, 1)
        (torn / name).unlink() if tear == "unlink" else _cut(torn / name)
        assert incomplete(torn).startswith(problem), (name, tear, incomplete(torn))
    (tmp_path / "empty" / "checkpoint-1").mkdir(parents=True)  # a kill as the folder appears
    assert incomplete(tmp_path / "empty" / "checkpoint-1").startswith("no trainer_state.json")


def test_the_newest_complete_checkpoint_is_chosen_and_only_rank_0_sets_torn_ones_aside(tmp_path):
    _checkpoint(tmp_path, 2)
    _cut(_checkpoint(tmp_path, 4) / "optimizer.pt")
    (tmp_path / "checkpoint-6").mkdir()
    earlier = tmp_path / "incomplete-checkpoint-8-20240101-000000"  # set aside by an earlier run: left alone
    earlier.mkdir()
    (tmp_path / "launch").mkdir()  # torchrun's files beside the checkpoints
    other_rank = resume_point(tmp_path, set_aside=False)
    assert other_rank == ResumePoint(str(tmp_path / "checkpoint-2"))
    assert (tmp_path / "checkpoint-4").is_dir() and (tmp_path / "checkpoint-6").is_dir()
    rank_0 = resume_point(tmp_path)
    assert rank_0.checkpoint == other_rank.checkpoint
    assert [p.rsplit("-", 2)[0] for p in rank_0.set_aside] == [str(tmp_path / "incomplete-checkpoint-6"),
                                                              str(tmp_path / "incomplete-checkpoint-4")]
    assert not (tmp_path / "checkpoint-4").exists() and earlier.is_dir()
    assert _files(Path(rank_0.set_aside[1])) == _files(tmp_path / "checkpoint-2")  # nothing produced is lost
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]  # what the trainer rotates


def test_without_a_complete_checkpoint_training_starts_afresh(tmp_path):
    assert resume_point(tmp_path) == ResumePoint(None)
    (tmp_path / "checkpoint-3").mkdir()
    assert resume_point(tmp_path).checkpoint is None and not (tmp_path / "checkpoint-3").exists()
