"""The trainer subprocess's own pieces, without training: the trainer class it hands
ultralytics (mixed precision checked without a download on a GPU only, the started model
used, several GPUs' DDP processes rebuilding it), and which DDP process reports."""

import types

import cloudpickle
import pytest
import ultralytics.engine.trainer
from ultralytics.models.yolo.detect import DetectionTrainer

from training import trainer


@pytest.fixture
def setup_calls(monkeypatch):
    """DetectionTrainer._setup_train replaced by a recorder of the check_amp it would call."""
    calls = []
    monkeypatch.setattr(ultralytics.engine.trainer, "check_amp", ultralytics.engine.trainer.check_amp)
    monkeypatch.setattr(
        DetectionTrainer, "_setup_train", lambda self: calls.append(ultralytics.engine.trainer.check_amp)
    )
    return calls


def bare(cls, device: str):
    instance = cls.__new__(cls)
    instance.device = types.SimpleNamespace(type=device)
    return instance


def test_mixed_precision_is_checked_without_a_download_on_a_gpu_only(setup_calls):
    original = ultralytics.engine.trainer.check_amp
    cls = trainer._quorum_trainer()
    bare(cls, "cpu")._setup_train()
    # on the CPU ultralytics' own check runs: it answers False (no AMP) without a download
    assert setup_calls[-1] is original
    bare(cls, "cuda")._setup_train()
    assert setup_calls[-1] is not original and setup_calls[-1](None) is True


def test_the_trainer_hands_over_the_started_model_and_survives_ddp_pickling(setup_calls):
    started = object()
    cls = trainer._quorum_trainer(started)
    assert bare(cls, "cpu").get_model() is started
    # ultralytics pickles the trainer class by value (cloudpickle) into each DDP process
    rebuilt = cloudpickle.loads(cloudpickle.dumps(cls))
    assert rebuilt.__name__ == "QuorumTrainer" and issubclass(rebuilt, DetectionTrainer)
    bare(rebuilt, "cuda")._setup_train()
    assert setup_calls[-1](None) is True


@pytest.mark.parametrize(("rank", "expected"), [(None, -1), ("0", 0), ("1", 1)])
def test_the_ddp_rank_comes_from_torch_s_launcher(monkeypatch, rank, expected):
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    assert trainer._ddp_rank() == expected
