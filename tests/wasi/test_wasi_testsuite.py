"""The official WASI preview 1 testsuite (72 tests: C, Rust, AssemblyScript) under ``fog run``.

The suite and its runner come from ``<repo>/../shared/wasi-testsuite`` (or the directory in
``FOG_WASI_TESTSUITE``); without it this module fails, it does not skip. Each test runs
through the suite's own ``TestCaseRunner`` (its config parsing, its checks of exit code,
stdout and stderr) with our adapter, on a copy of the suite so that tests writing into
their root leave the shared copy alone.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = Path(os.environ.get("FOG_WASI_TESTSUITE") or REPO.parent / "shared" / "wasi-testsuite")
LANGUAGES = ("c", "rust", "assemblyscript")
VERSION = "wasm32-wasip1"
ADAPTER = Path(__file__).with_name("wasi_testsuite_adapter.py")


def _test_ids() -> list[str]:
    out = []
    for lang in LANGUAGES:
        out += sorted(f"{lang}/{p.stem}" for p in (SUITE / "tests" / lang / VERSION).glob("*.wasm"))
    return out


TESTS = _test_ids()


MISSING = (f"the WASI testsuite is missing at {SUITE}: put it at "
           "<repo>/../shared/wasi-testsuite or set FOG_WASI_TESTSUITE")


def test_suite_is_present_and_complete() -> None:
    assert SUITE.is_dir(), MISSING
    assert len(TESTS) == 72, f"expected the suite's 72 tests under {SUITE}/tests, found {len(TESTS)}"


@pytest.fixture(scope="session")
def suite_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SUITE.is_dir():
        pytest.fail(MISSING, pytrace=False)
    dest = tmp_path_factory.mktemp("wasi-testsuite")
    shutil.copytree(SUITE / "tests", dest / "tests", symlinks=True)
    return dest


@pytest.fixture(scope="session")
def runner_module():
    if not SUITE.is_dir():
        pytest.fail(MISSING, pytrace=False)
    sys.path.insert(0, str(SUITE / "test-runner"))
    try:
        from wasi_test_runner import test_suite_runner
        from wasi_test_runner.runtime_adapter import RuntimeAdapter
    finally:
        sys.path.remove(str(SUITE / "test-runner"))
    return test_suite_runner, RuntimeAdapter


@pytest.fixture(scope="session")
def adapter(runner_module):
    _, RuntimeAdapter = runner_module
    return RuntimeAdapter(str(ADAPTER))


@pytest.mark.parametrize("wasi_path", ["native", "python"])
@pytest.mark.parametrize("test_id", TESTS or ["<suite missing>"])
def test_wasi_testsuite_passes_under_fog_run(test_id: str, wasi_path: str, suite_copy: Path,
                                             runner_module, adapter, monkeypatch) -> None:
    """On both WASI paths: the hot calls in C (FOG_WASI_NATIVE=1) and all in Python (=0)."""
    monkeypatch.setenv("FOG_WASI_NATIVE", "1" if wasi_path == "native" else "0")
    runner, _ = runner_module
    lang, name = test_id.split("/")
    wasm = suite_copy / "tests" / lang / VERSION / f"{name}.wasm"
    config = runner._read_test_config(str(wasm))
    case = runner.TestCaseRunner(config, str(wasm), runner.WasiVersion.WASM32_WASIP1, adapter)
    result = case.run()
    assert result.is_executed
    if result.failures:
        pytest.fail("\n".join([" ".join(case.last_argv())]
                              + [f"{f.type}: {f.message}" for f in result.failures]),
                    pytrace=False)
