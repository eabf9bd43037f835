"""Shared pytest fixtures for the torchvision_native tests.

Run from the repository root against a build tree, e.g.
    PYTHONPATH=build/dev/python python -m pytest tests/python

Fixtures and helpers:
  * ``isa``: parametrised over ``tvn.available_cpu_isas()``; switches the CPU kernels
    to that tier for the test and restores the previous tier afterwards.
  * ``cuda`` marker / ``requires_cuda``: GPU tests skip cleanly without a CUDA device.
  * ``num_threads``: restores ``tvn.num_threads()`` after a test that changes it.
"""
import pytest

import torchvision_native as tvn

try:
    import torch
except ImportError:  # pragma: no cover - the tests of the torch-free path run in subprocesses
    torch = None


def cuda_available():
    return torch is not None and torch.cuda.is_available()


NO_CUDA_REASON = "needs a CUDA device (torch.cuda.is_available() is False)"
requires_cuda = pytest.mark.skipif(not cuda_available(), reason=NO_CUDA_REASON)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: test needs a CUDA device; skipped when torch sees none")


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA_REASON)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc):
    # Parametrise here rather than with fixture params so the ids read test[avx2], ...
    if "isa" in metafunc.fixturenames:
        metafunc.parametrize("isa", tvn.available_cpu_isas(), indirect=True)


@pytest.fixture
def isa(request):
    """The CPU ISA tier under test; the previous tier is restored afterwards."""
    previous = tvn.active_cpu_isa()
    tvn.set_cpu_isa(request.param)
    try:
        yield request.param
    finally:
        tvn.set_cpu_isa(previous)


@pytest.fixture
def num_threads():
    """Lets a test change tvn/torch thread counts; both are restored afterwards."""
    previous = tvn.num_threads()
    previous_torch = torch.get_num_threads() if torch is not None else None
    try:
        yield previous
    finally:
        tvn.set_num_threads(previous)
        if previous_torch is not None:
            torch.set_num_threads(previous_torch)
