"""Through the real threaded WSGI server: the atomic nonce compare-and-advance under parallel requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers_server import UPLOAD, http_request, make_config, packet

from hil.server import ServerHandle


@pytest.fixture
def server(tmp_path):
    with ServerHandle(make_config(tmp_path, rate_limit=1000)) as handle:
        yield handle


def parallel_posts(url: str, bodies: list[bytes]) -> list[tuple[int, dict]]:
    """Send every body at once (a barrier releases all threads together)."""
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> tuple[int, dict]:
        barrier.wait(timeout=10)
        return http_request(url, "POST", UPLOAD, body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_32_copies_of_one_packet_are_accepted_exactly_once(server) -> None:
    results = parallel_posts(server.url, [packet(10001).to_json()] * 32)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [403] * 31
    assert {reply["error_code"] for status, reply in results if status == 403} == {"REPLAY_ATTACK"}
    assert len(server.state.storage.readings("EW-0001")) == 2  # one packet of two samples, stored once
    assert len(server.state.storage.events(code="REPLAY_ATTACK")) == 31


def test_parallel_distinct_nonces_never_accept_a_lower_one_after_a_higher(server) -> None:
    results = parallel_posts(server.url, [packet(n).to_json() for n in range(1, 33)])
    accepted = [reply["nonce_updated"] for status, reply in results if status == 200]
    assert 32 in accepted  # the highest nonce can never be a replay
    assert all(status in (200, 403) for status, _ in results)


def test_stop_is_idempotent_and_releases_the_port(tmp_path) -> None:
    handle = ServerHandle(make_config(tmp_path)).start()
    url, port = handle.url, handle.port
    assert url == f"http://127.0.0.1:{port}"
    handle.stop()
    handle.stop()
    with pytest.raises(RuntimeError, match="not started"):
        handle.url
    with pytest.raises(OSError):
        http_request(url, "GET", "/", timeout=2)
