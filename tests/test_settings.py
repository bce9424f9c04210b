"""The settings story: the names a user chooses from, the config dataclasses, their checks."""
import pytest

from rnnvanish import backend, cells, choices
from rnnvanish.errors import RnnvanishError
from rnnvanish.reference import ACTIVATIONS
from rnnvanish.tasks.objective import TaskConfig
from rnnvanish.training.settings import LanguageConfig, TrainConfig


def test_the_choices_are_the_librarys_names():
    assert choices.CELLS == tuple(cells.CELLS)
    assert choices.BACKENDS == tuple(backend.BACKENDS)
    assert choices.ACTIVATIONS == tuple(ACTIVATIONS)
    assert choices.DTYPES == tuple(cells.DTYPES)


def test_an_error_of_the_library_is_a_value_error():
    assert issubclass(RnnvanishError, ValueError)


def test_the_two_objectives_share_the_training_settings():
    shared = set(TrainConfig.names())
    assert shared <= set(LanguageConfig.names()) and shared <= set(TaskConfig.names())
    # the task's own defaults where they differ from a language model's
    assert (TaskConfig().hidden, TaskConfig().lr, TaskConfig().clip_norm) == (64, 3e-3, 1.0)
    assert (LanguageConfig().hidden, LanguageConfig().lr, LanguageConfig().clip_norm) == (128, 2e-3, 5.0)


@pytest.mark.parametrize("change, flag", [
    ({"cell": "elman"}, "unknown cell"), ({"dtype": "float16"}, "--dtype"), ({"hidden": 0}, "--hidden"),
    ({"batch": 2.5}, "--batch"), ({"lr": -1.0}, "--lr"), ({"clip_norm": float("nan")}, "--clip-norm"),
    ({"divergence": 0.5}, "--divergence"), ({"clip_mode": "sideways"}, "--clip-mode"),
    ({"steps": 10, "epochs": 2}, "--steps or --epochs"), ({"val_frac": 1.0}, "--val-frac"),
    ({"weight_decay": -0.1}, "--weight-decay"), ({"truncate": 0}, "--truncate"),
])
def test_a_bad_value_names_its_flag(change, flag):
    with pytest.raises(RnnvanishError, match=flag):
        LanguageConfig(**change).check()


def test_unknown_settings_are_refused_and_a_dict_round_trips():
    config = TaskConfig(task="copy", length=30, forget_bias=2.0)
    assert TaskConfig.from_dict(config.to_dict()) == config
    with pytest.raises(RnnvanishError, match="unknown setting 'colour'"):
        TaskConfig.from_dict({"colour": "red"})
    with pytest.raises(RnnvanishError, match="stop-at"):
        TaskConfig(stop_at=1.5).check()


def test_cell_options_take_the_objectives_defaults_and_refuse_another_cells_option():
    assert choices.cell_options("lstm", LanguageConfig(), {"forget_bias": 1.0}) == {"forget_bias": 1.0}
    assert choices.cell_options("lstm", TaskConfig(forget_bias=2.0), {"forget_bias": 3.0}) == {"forget_bias": 2.0}
    assert choices.cell_options("tanh", LanguageConfig(init_hh="identity", radius=0.9)) == {
        "init_hh": "identity", "radius": 0.9}
    with pytest.raises(RnnvanishError, match="reset-before applies to the gru cell only"):
        choices.cell_options("lstm", LanguageConfig(reset_before=True))
