"""The mapper from Python: plan and utilisation report as objects, equal to `pcmsim map`."""
import json

import pytest

import pcmsim

from conftest import ZOO_MLP, run_cli


def test_plan_of_layer_shapes():
    layers = [pcmsim.LayerMatrix.linear("fc1", 784, 256), pcmsim.LayerMatrix.linear("fc2", 256, 10),
              pcmsim.LayerMatrix.conv2d("conv", 16, 32, 3, 3)]
    chip = pcmsim.ChipSpec(tile_rows=256, tile_cols=256)
    p = pcmsim.plan(layers, chip)
    pcmsim.check_plan(p, layers)
    fc1 = p.layer("fc1")
    assert len(fc1.slices) == 4  # 784 rows over 256-row tiles: 4 row blocks
    assert sum(s.rows for s in fc1.slices) == 784
    assert sum(len(ps.slices) for ps in fc1.partial_sums) == 4
    report = pcmsim.utilisation_report(p)
    assert report.tiles_used == p.tiles_used
    assert report.analog_weights == 784 * 256 + 256 * 10 + 16 * 9 * 32
    assert 0 < report.utilisation <= 1
    occ = pcmsim.tile_occupancy(p)
    assert len(occ) == p.tiles_used and abs(occ.sum() * 256 * 256 - report.analog_weights) < 1e-6
    with pytest.raises(ValueError, match="tiles"):
        pcmsim.plan(layers, pcmsim.ChipSpec(num_tiles=2))
    with pytest.raises(ValueError, match="nope"):
        pcmsim.plan(layers, chip, pcmsim.MapperOptions(digital_layers=["nope"]))


def test_network_plan_equals_the_cli():
    net = pcmsim.load_network(str(ZOO_MLP))
    options = pcmsim.MapperOptions(digital_layers=["last"])
    p = pcmsim.plan_network(net, pcmsim.ChipSpec(tile_rows=128, tile_cols=128), options)
    cli = run_cli("map", "--model", ZOO_MLP, "--tile", "128x128", "--digital-layers", "last",
                  "--format", "json")
    theirs = json.loads(cli)
    ours = json.loads(pcmsim.utilisation_report(p).json())
    assert ours["totals"] == theirs["totals"]
    assert ours["layers"] == theirs["layers"]
    assert p.layers[-1].digital and not p.layers[-1].slices
