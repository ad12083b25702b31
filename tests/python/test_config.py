"""Configuration structs: keyword construction, repr, string enums, validate() -> ValueError
with the C++ message intact, nested edits in place."""
import copy

import pytest

import pcmsim

STRUCTS = ["IoParams", "DigitalParams", "GdcParams", "CalibrationParams", "PcmParams",
           "IdealParams", "StateIndependentParams", "TabulatedParams", "DeviceSpec",
           "UnitCellSpec", "ChipSpec", "MapperOptions", "SimulationConfig", "EvaluationOptions",
           "LayerPrecision", "RngKey", "DeviceReportConfig", "LayerMatrix"]


@pytest.mark.parametrize("name", STRUCTS)
def test_every_struct_constructs_with_defaults_and_reprs_its_fields(name):
    cls = getattr(pcmsim, name)
    obj = cls()
    text = repr(obj)
    assert text.startswith(name + "(")
    for field in obj.to_dict():
        assert field + "=" in text
    assert obj == cls()
    assert copy.copy(obj) == obj and obj.copy() == obj


def test_keyword_construction_sets_fields_and_keeps_defaults():
    io = pcmsim.IoParams(p_in=4, out_noise=0, noise_management="static_range")
    assert io.p_in == 4 and io.out_noise == 0.0 and io.noise_management == "static_range"
    assert io.p_out == 8 and io.out_bound == 10.0  # documented defaults kept
    assert "p_in=4" in repr(io) and "noise_management='static_range'" in repr(io)
    io.validate()


def test_unknown_keyword_is_a_type_error_listing_fields():
    with pytest.raises(TypeError, match=r"unknown field 'p_inn'.*p_in"):
        pcmsim.IoParams(p_inn=4)


def test_validate_raises_value_error_with_the_cpp_message():
    with pytest.raises(ValueError) as e:
        pcmsim.IoParams(p_in=1).validate()
    assert str(e.value).startswith("[core::IoParams] p_in = 1")
    with pytest.raises(ValueError, match=r"\[devices::PcmParams\] g_max"):
        pcmsim.PcmParams(g_max=-1).validate()
    with pytest.raises(ValueError, match="tile_rows = 0"):
        pcmsim.ChipSpec(tile_rows=0).validate()
    with pytest.raises(ValueError, match="trials"):
        pcmsim.EvaluationOptions(trials=0).validate()
    with pytest.raises(ValueError, match="acc_bits"):
        pcmsim.DigitalParams(accumulator="fixed_point", acc_bits=1).validate()


def test_bad_enum_name_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="abs_maxx"):
        pcmsim.IoParams(noise_management="abs_maxx")
    io = pcmsim.IoParams()
    with pytest.raises(ValueError, match="sideways"):
        io.rounding = "sideways"
    assert io.rounding == "nearest"  # unchanged after the failed assignment


def test_wrong_value_type_is_a_type_error():
    with pytest.raises(TypeError):
        pcmsim.IoParams(p_in="four")


def test_nested_structs_are_edited_in_place():
    cfg = pcmsim.SimulationConfig()
    cfg.io.p_in = 4
    cfg.device.pcm.drift_scale = 0.5
    cfg.chip.tile_rows = 128
    assert cfg.io.p_in == 4 and cfg.device.pcm.drift_scale == 0.5 and cfg.chip.tile_rows == 128
    cfg.layer_precision = {"fc1": pcmsim.LayerPrecision(p_in=6, p_out=6)}
    assert cfg.layer_precision["fc1"].p_in == 6
    cfg.layer_replicas = {"stem": 16}
    assert cfg.layer_replicas == {"stem": 16}
    d = cfg.to_dict()
    assert d["io"]["p_in"] == 4 and d["device"]["pcm"]["drift_scale"] == 0.5
    cfg.validate()
    cfg2 = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=4), seed=3)
    assert cfg2.io.p_in == 4 and cfg2.seed == 3 and cfg2 != cfg


def test_layer_replicas_out_of_range_is_named():
    cfg = pcmsim.SimulationConfig()
    cfg.layer_replicas = {"stem": 1}
    with pytest.raises(ValueError, match=r"layer_replicas\['stem'\] = 1: must be 2..64"):
        cfg.validate()


def test_simulation_config_validation_names_the_nested_field():
    cfg = pcmsim.SimulationConfig()
    cfg.io.out_noise = -1
    with pytest.raises(ValueError, match="out_noise"):
        cfg.validate()
