"""Energy sources with injected fakes: NVML (counter, NotSupported -> power integration, library not
found), RAPL on a fake sysfs tree (wrap-around, unreadable), and detect()."""

from __future__ import annotations

import types

import pynvml
import pytest

from tsglab.energy import MeterUnavailable, NvmlCounter, NvmlPowerIntegration, RaplCounter, detect
from tsglab.energy._rapl import _Zone


class FakeClock:
    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * 1e9)


def fake_nvml(*, clock: FakeClock, power_w: float = 250.0, init_error: int | None = None, counter: bool = True,
              instant: bool = True, average_w: float | None = None, gpus: int = 1) -> types.SimpleNamespace:
    """A pynvml look-alike: pynvml's real constants, errors and field-value struct; fake device state.

    The energy counter integrates ``state.power_w`` over the fake clock; ``average_w`` makes
    nvmlDeviceGetPowerUsage disagree with the instantaneous field, so tests see which one was used.
    """
    state = types.SimpleNamespace(power_w=power_w, energy_mj=5_000_000.0, last_ns=clock.now_ns, shutdowns=0)

    def advance():
        state.energy_mj += state.power_w * (clock.now_ns - state.last_ns) / 1e6
        state.last_ns = clock.now_ns

    def nvmlInit():
        if init_error is not None:
            raise pynvml.NVMLError(init_error)

    def nvmlShutdown():
        state.shutdowns += 1

    def nvmlDeviceGetTotalEnergyConsumption(handle):
        if not counter:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        advance()
        return int(state.energy_mj)

    def nvmlDeviceGetFieldValues(handle, field_ids):
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        for i, field_id in enumerate(field_ids):
            values[i].fieldId = field_id
            if field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and instant:
                values[i].nvmlReturn = pynvml.NVML_SUCCESS
                values[i].valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                values[i].value.uiVal = round(state.power_w * 1e3)
            else:
                values[i].nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    names = {k: getattr(pynvml, k) for k in dir(pynvml) if k.startswith(("NVML_", "NVMLError"))}
    return types.SimpleNamespace(
        **names, state=state, nvmlInit=nvmlInit, nvmlShutdown=nvmlShutdown,
        nvmlDeviceGetCount=lambda: gpus, nvmlDeviceGetHandleByIndex=lambda i: f"handle{i}",
        nvmlDeviceGetName=lambda h: b"Fake H100",
        nvmlDeviceGetTotalEnergyConsumption=nvmlDeviceGetTotalEnergyConsumption,
        nvmlDeviceGetFieldValues=nvmlDeviceGetFieldValues,
        nvmlDeviceGetPowerUsage=lambda h: round((average_w if average_w is not None else state.power_w) * 1e3),
    )


# -- NVML ----------------------------------------------------------------------------------------------

def test_nvml_counter_reads_joules_since_open():
    clock = FakeClock()
    nvml = fake_nvml(clock=clock, power_w=250.0)
    source = NvmlCounter.open(0, nvml=nvml, clock=clock)
    t0, e0 = source.read()
    clock.advance(2.0)
    t1, e1 = source.read()
    assert (source.name, source.domain) == ("nvml", "gpu0:Fake H100")
    assert e0 == pytest.approx(0.0, abs=1e-3)
    assert (t1 - t0, e1 - e0) == (2_000_000_000, pytest.approx(500.0, abs=1e-3))
    source.close()
    source.close()  # idempotent: one nvmlShutdown per nvmlInit
    assert nvml.state.shutdowns == 1


def test_counter_not_supported_falls_back_to_instant_power_integration():
    clock = FakeClock()
    nvml = fake_nvml(clock=clock, power_w=100.0, counter=False, average_w=999.0)
    meter, reason = detect(types.SimpleNamespace(meter="nvml", gpu_index=0), nvml=nvml, clock=clock)
    assert isinstance(meter, NvmlPowerIntegration)
    assert meter.name == "nvml-power-integration"
    assert meter.power_reading == "instant"
    assert "not supported" in reason
    assert "integrating instant power" in reason
    _, e0 = meter.read()
    nvml.state.power_w = 300.0
    clock.advance(1.0)
    _, e1 = meter.read()
    assert e1 - e0 == pytest.approx(200.0)  # trapezoid of 100 W and 300 W over 1 s; not the 999 W average


def test_power_integration_uses_the_1s_average_when_the_instant_field_is_missing():
    clock = FakeClock()
    nvml = fake_nvml(clock=clock, counter=False, instant=False, power_w=50.0, average_w=120.0)
    source = NvmlPowerIntegration.open(0, nvml=nvml, clock=clock)
    assert source.power_reading == "1s-average"
    assert "(power 1s-average)" in source.domain
    source.read()
    clock.advance(0.5)
    assert source.read()[1] == pytest.approx(60.0)


def test_library_not_found_gives_the_reason():
    nvml = fake_nvml(clock=FakeClock(), init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(MeterUnavailable, match=r"^NVML: library not found$"):
        NvmlCounter.open(0, nvml=nvml)
    spec = types.SimpleNamespace(meter="nvml", gpu_index=0)
    assert detect(spec, nvml=nvml) == (None, "no usable NVIDIA GPU (NVML: library not found)")


def test_missing_pynvml_module_is_an_unavailable_reason(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)
    meter, reason = detect(types.SimpleNamespace(meter="nvml", gpu_index=0))
    assert meter is None
    assert "pynvml not installed" in reason
    assert "pip install nvidia-ml-py" in reason


def test_gpu_index_out_of_range():
    nvml = fake_nvml(clock=FakeClock(), gpus=2)
    with pytest.raises(MeterUnavailable, match=r"gpu_index 3 out of range \(2 GPU\(s\) visible\)"):
        NvmlCounter.open(3, nvml=nvml)
    assert nvml.state.shutdowns == 1


# -- RAPL ----------------------------------------------------------------------------------------------

def make_zone(root, name: str, label: str, energy_uj: int, max_uj: int = 262_143_328_850):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_rapl_sums_packages_ignores_subzones_and_handles_wraparound(tmp_path):
    clock = FakeClock()
    pkg0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_uj=1_000_000)
    pkg1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = make_zone(tmp_path, "intel-rapl:0:0", "core", 0)
    source = RaplCounter.open(tmp_path, clock=clock)
    assert (source.name, source.domain) == ("rapl", "package-0+package-1")
    assert source.read()[1] == 0.0
    (pkg0 / "energy_uj").write_text("100000\n")  # wrapped: 900000 -> 1000000 -> 100000 = 200000 uJ
    (pkg1 / "energy_uj").write_text("5500000\n")
    (core / "energy_uj").write_text("99000000\n")  # a sub-zone is inside its package: never added
    clock.advance(1.0)
    t_ns, joules = source.read()
    assert t_ns == clock.now_ns
    assert joules == pytest.approx(0.2 + 0.5)
    (pkg0 / "energy_uj").write_text("400000\n")
    assert source.read()[1] == pytest.approx(0.5 + 0.5)


def test_rapl_missing_tree_and_unreadable_counter(tmp_path, monkeypatch):
    with pytest.raises(MeterUnavailable, match=r"RAPL not readable \(.*nothere missing\)"):
        RaplCounter.open(tmp_path / "nothere")
    with pytest.raises(MeterUnavailable, match=r"no intel-rapl:N package zones"):
        RaplCounter.open(tmp_path)
    make_zone(tmp_path, "intel-rapl:0", "package-0", 10)

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_Zone, "read_raw", denied)
    with pytest.raises(MeterUnavailable, match=r"permission denied on .*energy_uj; root only since Linux 5.10"):
        RaplCounter.open(tmp_path)


def test_rapl_garbage_counter_is_unavailable(tmp_path):
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    (zone / "max_energy_range_uj").write_text("lots\n")
    with pytest.raises(MeterUnavailable, match=r"RAPL not readable \(.*intel-rapl:0: invalid literal"):
        RaplCounter.open(tmp_path)


# -- detect --------------------------------------------------------------------------------------------

def test_auto_prefers_nvml_then_rapl_then_none(tmp_path):
    spec = types.SimpleNamespace(meter="auto", gpu_index=0)
    meter, reason = detect(spec, nvml=fake_nvml(clock=FakeClock()), powercap_root=tmp_path)
    assert isinstance(meter, NvmlCounter)
    assert reason == "NVML total-energy counter on gpu0:Fake H100"
    no_gpu = fake_nvml(clock=FakeClock(), init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    make_zone(tmp_path / "pc", "intel-rapl:0", "package-0", 10)
    meter, reason = detect(spec, nvml=no_gpu, powercap_root=tmp_path / "pc")
    assert isinstance(meter, RaplCounter)
    assert reason == "RAPL package counters (package-0)"
    meter, reason = detect(spec, nvml=no_gpu, powercap_root=tmp_path / "absent")
    assert meter is None
    assert reason == (f"no NVIDIA GPU (NVML: library not found) and RAPL not readable "
                      f"({tmp_path / 'absent'} missing)")


def test_detect_none_rapl_and_bad_meter(tmp_path):
    assert detect(types.SimpleNamespace(meter="none", gpu_index=0)) == (
        None, "energy.meter is 'none' (energy not measured)")
    meter, reason = detect(types.SimpleNamespace(meter="rapl", gpu_index=0), powercap_root=tmp_path / "x")
    assert meter is None
    assert reason.startswith("RAPL not readable")
    with pytest.raises(ValueError, match=r"`energy.meter` must be one of .*got 'gpu'"):
        detect(types.SimpleNamespace(meter="gpu", gpu_index=0))


def test_detect_accepts_the_real_energy_spec():
    from tsglab.config import EnergySpec

    meter, reason = detect(EnergySpec(meter="nvml"), nvml=fake_nvml(clock=FakeClock()))
    assert isinstance(meter, NvmlCounter)
    assert "counter" in reason
