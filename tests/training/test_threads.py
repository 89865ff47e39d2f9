"""Default thread count: the cores left by other busy processes."""

import os

from lmforge.training import threads


def test_busy_cores_lower_the_default_and_an_idle_machine_gets_its_share(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert threads.default_threads(1, busy=0.05) == (2, 0.05)
    assert threads.default_threads(1, busy=1.0) == (1, 1.0)
    assert threads.default_threads(1, busy=1.9) == (1, 1.9)       # never fewer than one
    assert threads.default_threads(2, busy=None) == (1, 0.0)       # ranks share the cores; no probe
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert threads.default_threads(1, busy=3.2) == (13, 3.2)


def test_competing_cores_reads_proc_stat(monkeypatch):
    samples = iter([(100.0, 400.0), (150.0, 500.0)])   # half of all CPU time busy in the window
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert threads.competing_cores(window=0.0) == 2.0
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    assert threads.competing_cores(window=0.0) == 0.0


def test_the_cpu_peak_is_measured_once_when_idle_and_cached(tmp_path, monkeypatch):
    import torch

    from lmforge.training import metrics

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(metrics, "_PEAK_CACHE", {})
    measured = iter([100e9, 50e9])
    monkeypatch.setattr(metrics, "_measure_matmul_peak", lambda: next(measured))
    monkeypatch.setattr(metrics, "competing_cores", lambda window: 1.0)     # busy: used, not kept
    assert metrics.peak_flops(torch.device("cpu")) == 100e9
    assert not (tmp_path / "lmforge" / "cpu_peak.json").exists()
    monkeypatch.setattr(metrics, "_PEAK_CACHE", {})
    monkeypatch.setattr(metrics, "competing_cores", lambda window: 0.0)     # idle: kept
    assert metrics.peak_flops(torch.device("cpu")) == 50e9
    monkeypatch.setattr(metrics, "_PEAK_CACHE", {})
    monkeypatch.setattr(metrics, "_measure_matmul_peak", lambda: 1.0)       # never measured again
    assert metrics.peak_flops(torch.device("cpu")) == 50e9
    assert (tmp_path / "lmforge" / "cpu_peak.json").exists()
