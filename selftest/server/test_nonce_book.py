"""NonceBook, the scenarios' nonce bookkeeping, against a server that keeps its nonces across tests (an
external server's case, here a reference server run in-process): the first test of a session probes
the device's last nonce once, every test gets a block above it, and a probe that cannot learn it is a
usage error that says why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hil.images.keys import KeyStore
from hil.net.forge import Forger
from hil.net.replay import send_http
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server import ServerConfig, ServerHandle
from hil.server.nonce_book import NonceBook
from hil.server.under_test import ServerUnderTest
from hil.wire.identity import lab_identity, registry
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile, load_profile

Start = Callable[..., ServerUnderTest]


@pytest.fixture(params=["ecowatt-api", "ecowatt-fw134"])
def wire(request: pytest.FixtureRequest) -> WireProfile:
    return load_profile(request.param)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    store = KeyStore(tmp_path / "keys")
    store.ensure()  # TEST ONLY keys
    return store


@pytest.fixture
def start(tmp_path: Path, wire: WireProfile, keys: KeyStore) -> Iterator[Start]:
    handles: list[ServerHandle] = []

    def factory(rate_limit: int = 0) -> ServerUnderTest:
        config = ServerConfig(db_path=tmp_path / f"db{len(handles)}", devices=registry(wire, keys, [wire.default_device_id]),
                              admin_token="selftest-admin", rate_limit=rate_limit, wire=wire)  # fmt: skip
        handles.append(ServerHandle(config).start())
        return ServerUnderTest(handles[-1].url, "", handles[-1])

    yield factory
    for handle in handles:
        handle.stop()


def upload(server: ServerUnderTest, wire: WireProfile, keys: KeyStore, nonce: int) -> Outcome:
    """One signed upload of the profile's lab device with *nonce*; its outcome."""
    device_id = wire.default_device_id
    readings = Readings(device_id, 1_700_000_000, tuple(Reading(r, 1.0) for r in REGISTERS))
    forger = Forger(wire)
    packet = forger.craft(device_id, nonce, readings, key=lab_identity(wire, keys, device_id))
    host, port = server.address
    request = forger.request(packet, host=f"{host}:{port}")
    reply = send_http(request.raw, server.address, method=request.method or "POST")
    return wire.classify(reply.status, reply.body).outcome


def test_without_a_server_every_test_starts_as_a_fresh_device(wire: WireProfile) -> None:
    book = NonceBook(None, wire)
    assert book.block() == book.block() == wire.nonce.start(wire.nonce.provisioned)


def test_a_fresh_server_is_probed_once_then_handed_out_in_blocks(start: Start, wire: WireProfile, keys: KeyStore) -> None:
    server = start()
    book = NonceBook(server, wire, keys)
    first = book.block()
    assert first == max(wire.nonce.start(wire.nonce.provisioned), wire.nonce.probe)
    assert book.block() == first + book.block_size  # no second probe: the next block follows
    assert upload(server, wire, keys, first + 1) is Outcome.ACCEPTED


def test_a_server_with_history_is_learnt_from_the_refused_probe(start: Start, wire: WireProfile,
                                                                 keys: KeyStore) -> None:
    server = start()
    last = max(wire.nonce.start(wire.nonce.provisioned), wire.nonce.probe) + 500
    assert upload(server, wire, keys, last) is Outcome.ACCEPTED  # an earlier run got this far
    book = NonceBook(server, wire, keys)  # a new session
    block = book.block()
    assert block == last, f"the book starts at {block}, the server's last accepted nonce is {last}"
    assert upload(server, wire, keys, block + 1) is Outcome.ACCEPTED
    assert book.block() == last + book.block_size


def test_an_unregistered_device_is_a_usage_error_naming_it(start: Start, wire: WireProfile, keys: KeyStore) -> None:
    server = start()
    with pytest.raises(pytest.UsageError, match="EW-NOT-REGISTERED") as raised:
        NonceBook(server, wire, keys).block("EW-NOT-REGISTERED")
    assert server.url in str(raised.value) and wire.name in str(raised.value)


def test_a_rate_limited_probe_says_to_wait_for_the_window(start: Start, wire: WireProfile, keys: KeyStore) -> None:
    if not wire.limits.rate:
        pytest.skip(f"wire profile {wire.name} declares no rate limit")
    server = start(rate_limit=1)
    first = max(wire.nonce.start(wire.nonce.provisioned), wire.nonce.probe)
    assert upload(server, wire, keys, first + 500) is Outcome.ACCEPTED  # the window's one upload
    with pytest.raises(pytest.UsageError, match="rate-limited the probe"):
        NonceBook(server, wire, keys).block()
