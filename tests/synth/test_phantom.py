import numpy as np

from toolkit.synth.cohort import draw_anatomy
from toolkit.synth.phantom import READERS, Grid, longest_axial_diameter_mm, render


def _patient(seed, size_cm=7.0, necrosis=0.4):
    grid = Grid(shape=(16, 96, 96), spacing=(2.0, 2.0, 5.0))
    rng = np.random.default_rng(seed)
    draw = {
        "size_cm": size_cm,
        "n_tumours": 3,
        "necrosis": necrosis,
        "heterogeneity": 20.0,
        "enhancement": 70.0,
        "washout": 30.0,
    }
    anatomy = draw_anatomy(rng, grid, draw)
    return grid, anatomy, render(grid, anatomy, rng)


def test_tumours_lie_inside_the_liver():
    for seed in range(3):
        _, _, rendered = _patient(seed, size_cm=10.5)
        assert rendered.tumour.any()
        assert rendered.liver[rendered.tumour > 0].all()


def test_readers_disagree_only_along_the_boundary():
    _, _, rendered = _patient(4)
    truth = rendered.tumour > 0
    for name in READERS:
        reader = rendered.readers[name] > 0
        dice = 2 * (reader & truth).sum() / (reader.sum() + truth.sum())
        assert 0.8 < dice < 1.0
    assert not np.array_equal(rendered.readers["reader1_a"], rendered.readers["reader1_b"])


def test_necrotic_core_is_hypodense_in_both_phases():
    grid, anatomy, rendered = _patient(5, size_cm=9.0, necrosis=0.5)
    main = anatomy.tumours[0]
    x, y, z = grid.axes()
    k = int(np.argmin(np.abs(z - main.centre[2])))
    j = int(np.argmin(np.abs(y - main.centre[1] - main.necrosis_offset[1])))
    i = int(np.argmin(np.abs(x - main.centre[0] - main.necrosis_offset[0])))
    assert rendered.arterial[k, j, i] < 60 and rendered.portal[k, j, i] < 60
    liver_hu = 70.0
    assert np.percentile(rendered.arterial[rendered.tumour > 0], 90) > liver_hu + 30


def test_longest_diameter_of_a_disc_is_its_diameter():
    mask = np.zeros((3, 101, 101), np.uint8)
    yy, xx = np.mgrid[:101, :101]
    mask[1] = (yy - 50) ** 2 + (xx - 50) ** 2 <= 30**2
    diameter, k = longest_axial_diameter_mm(mask, (0.5, 0.5, 2.0))
    assert k == 1
    assert abs(diameter - 30.5) < 0.6  # 61 pixels of 0.5 mm
