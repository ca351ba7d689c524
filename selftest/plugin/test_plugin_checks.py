"""The hil plugin's own checks: defect names in ``fails_with`` and the proof-run options."""

from __future__ import annotations

import pytest

SCENARIO = '''
import pytest

@pytest.mark.fails_with({defect!r})
def test_claims():
    assert False
'''


def test_unknown_defect_in_fails_with_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SCENARIO.format(defect="nonce-not-persistd"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*fails_with names unknown defects*nonce-not-persistd*list-defects*"])


@pytest.mark.parametrize("option, defect", [("--hil-sim-defect", "nonce-not-persisted"),
                                            ("--hil-server-defect", "no-rate-limit")])
def test_proof_run_keeps_claiming_scenarios_as_strict_xfail(pytester: pytest.Pytester, option: str,
                                                            defect: str) -> None:
    pytester.makepyfile(SCENARIO.format(defect=defect) + "\n\ndef test_unrelated():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", option, defect, "--hil-defect-proof")
    result.assert_outcomes(xfailed=1, deselected=1)


def test_proof_run_needs_exactly_one_defect(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SCENARIO.format(defect="no-rate-limit"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-sim-defect", "nonce-not-persisted",
                                "--hil-server-defect", "no-rate-limit", "--hil-defect-proof")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs exactly one defect*"])


def test_bad_capture_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-capture-mode", "tap")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hil-capture-mode 'tap': expected one of auto, relay*"])


def test_unknown_capability_in_needs_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.needs('power-cutt')\ndef test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x: needs('power-cutt') names unknown capabilities *power-cutt*; "
                                 "known: power, power-cut, reset, sniff, virtual*"])


def test_known_capabilities_in_needs_are_accepted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.needs('power-cut', 'sniff')\ndef test_x():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_firmware_marker_takes_one_artifact(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.firmware('app-v1', 'app-v2')\ndef test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_x: @pytest.mark.firmware takes one artifact name*"])


def test_harness_markers_are_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.stride('T')\n@pytest.mark.needs('power')\n"
                        "@pytest.mark.fails_with('no-rate-limit')\n@pytest.mark.firmware('app-v2')\n"
                        "@pytest.mark.ota_packages('app-v2')\ndef test_x():\n    pass\n\n"
                        "@pytest.mark.firmwre('app-v2')\ndef test_typo():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'firmwre' not found in `markers` configuration option*"])
