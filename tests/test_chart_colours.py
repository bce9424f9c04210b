"""Each cell keeps one colour on every chart, so a comparison of cells can be read by colour."""
from types import SimpleNamespace

from rnnvanish.cells import CELLS
from rnnvanish.plots.trace import COLOURS, _curve_colours


def test_every_cell_has_a_colour_of_its_own():
    colours = [cls.colour for cls in CELLS.values()]
    assert all(colours), colours
    assert len(set(colours)) == len(colours), colours


def test_a_comparison_of_cells_draws_each_in_its_colour_and_repeats_fall_back_to_the_cycle():
    traces = [SimpleNamespace(meta={"cell": name}) for name in CELLS]
    assert _curve_colours(traces) == [cls.colour for cls in CELLS.values()]
    same = [SimpleNamespace(meta={"cell": "lstm"}) for _ in range(3)]
    assert _curve_colours(same) == list(COLOURS[:3])
