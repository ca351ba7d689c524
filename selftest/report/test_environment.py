"""Environment table and JSON; key material is refused on record and scrubbed from outputs."""

from __future__ import annotations

import pytest

from hil.report.environment import Environment, SecretRefusedError, fingerprint_of
from hil.report.secrets import SecretRegistry, scrub_file

HMAC_KEY = bytes(range(0x40, 0x60))  # 32 bytes, TEST-ONLY
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


def test_records_and_refusals() -> None:
    env = Environment()
    env.register_secret(HMAC_KEY, "device HMAC key")
    env.record_board("board-0", "esp32", "24:0a:c4:00:00:01", "rfc2217://127.0.0.1:4000")
    env.record_key_fingerprint("hmac", fingerprint_of(HMAC_KEY))
    with pytest.raises(SecretRefusedError, match="key_fingerprints record 'leak' field "
                       "'fingerprint': it contains registered secret.s. device HMAC key"):
        env.record_key_fingerprint("leak", HMAC_KEY.hex().upper())
    with pytest.raises(SecretRefusedError, match="PEM block"):
        env.record_firmware("v1", PEM, "00" * 32)
    with pytest.raises(ValueError, match="at least 8 are needed"):
        env.register_secret(b"short", "psk")
    assert env.to_dict()["boards"]["board-0"]["port"] == "rfc2217://127.0.0.1:4000"
    assert "leak" not in env.to_dict()["key_fingerprints"]


def test_scrub_finds_every_encoding(tmp_path) -> None:
    secrets = SecretRegistry()
    secrets.register("p@ss<w>rd&psk", "wifi PSK")
    secrets.register(HMAC_KEY.hex(), "hmac")
    import base64
    hidden = base64.b64encode(b"log line: p@ss<w>rd&psk\n").decode()
    for text in ("x p@ss&lt;w&gt;rd&amp;psk y", f"key={HMAC_KEY.hex().upper()}",
                 f'<a href="data:text/plain;charset=utf-8;base64,{hidden}">log</a>',
                 f"b64 {base64.b64encode(HMAC_KEY).decode()}", PEM):
        path = tmp_path / "out.html"
        path.write_text(text)
        assert scrub_file(path, secrets), text
        assert not secrets.find(path.read_text()), path.read_text()
    path.write_text("nothing to see")
    assert scrub_file(path, secrets) == [] and path.read_text() == "nothing to see"


TESTS = '''
import pytest

HMAC_KEY = bytes(range(0x40, 0x60))

@pytest.fixture(scope="session")
def board(hil_environment):
    hil_environment.register_secret(HMAC_KEY, "device HMAC key")
    hil_environment.record_board("board-0", "esp32", "24:0a:c4:00:00:01", "rfc2217://127.0.0.1:4000")
    hil_environment.record_board("board-<1>", "esp32c6", "40:4c:ca:00:00:02", "/dev/ttyUSB1")
    hil_environment.record_firmware("ecowatt v2", "2.0.0", "ab" * 32)
    hil_environment.record_key_fingerprint("mcuboot signing key", "SHA256:" + "cd" * 32)
    return "board-0"

def test_uses_board(board):
    print("oops, logged the key:", HMAC_KEY.hex())  # registered on a worker under xdist

def test_refused(board, hil_environment):
    with pytest.raises(ValueError, match="registered secret"):
        hil_environment.record_tool("leak", HMAC_KEY.hex())
'''


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["single", "xdist"])
def test_environment_table(pytester: pytest.Pytester, run_inner, workers) -> None:
    pytester.makepyfile(test_env=TESTS)
    run = run_inner(*workers)
    run.result.assert_outcomes(passed=2)
    assert run.result.ret == 1  # the leaked key fails the run, even when a worker registered it
    assert HMAC_KEY.hex() not in run.html_text
    assert "oops, logged the key: [redacted secret: device HMAC key]" in run.html_text
    env = run.data["environment"]
    assert env["hil boards"]["board-0"] == \
        "chip esp32, mac 24:0a:c4:00:00:01, port rfc2217://127.0.0.1:4000"
    assert "board-&lt;1&gt;" in env["hil boards"]  # pytest-html inserts these as markup
    assert env["hil firmware"]["ecowatt v2"] == f"version 2.0.0, sha256 {'ab' * 32}"
    assert env["hil key fingerprints"]["mcuboot signing key"] == f"fingerprint SHA256:{'cd' * 32}"
    for tool in ("esptool", "imgtool", "pyserial", "scapy", "pytest-html", "python"):
        assert env["hil tools"][tool] and env["hil tools"][tool] != "not installed"
    saved = run.json("environment")
    assert saved["boards"]["board-<1>"]["port"] == "/dev/ttyUSB1"


def test_leaked_secret_fails_run_and_is_redacted(pytester: pytest.Pytester, run_inner) -> None:
    pytester.makepyfile(test_leak='''
KEY = bytes(range(0x40, 0x60))

def test_prints_key(hil_environment, evidence):
    hil_environment.register_secret(KEY, "device HMAC key")
    evidence.attach_text("console", "hmac=" + KEY.hex())
    print("debug:", KEY.hex())
    assert False, "computed " + KEY.hex()
''')
    run = run_inner()
    assert run.result.ret == 1
    run.result.stderr.fnmatch_lines(["*SECRET MATERIAL (device HMAC key) reached*report.html*"])
    assert "404142434445" not in run.result.stderr.str()  # the message names, never shows
    secret = bytes(range(0x40, 0x60)).hex()
    for name in ("report.html", "junit.xml"):
        text = (run.reports / name).read_text()
        assert secret not in text and "[redacted secret: device HMAC key]" in text
    attached = next(run.reports.glob("evidence/*/console*.txt")).read_text()
    assert attached == "hmac=[redacted secret: device HMAC key]"
