"""How reliably the parallel-copies scenario finds a check-then-act race on the nonce check.

A race is a matter of chance: one trial of N copies of one packet released together may or may not
land two of them in the window between the nonce read and its update. This measures, against the
reference server with the deliberately racy ``nonce-check-not-atomic`` defect (and against the sound
server as the baseline, where no trial may ever accept two), the probability that one trial detects
the race for several copy counts, with a 95% Wilson interval, and from it the chance that the
scenario's ``RACE_TRIALS`` trials all miss it and the trials needed for a 99.9% detection.

    python bench/race_detection.py [--trials 200] [--copies 8 --copies 32] [--wire-profile ecowatt-api]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

from hil.net.forge import Forger
from hil.net.replay import replay_http
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server import ServerConfig, ServerHandle, devices_from_entries
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile, load_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_upload_server import PARALLEL_COPIES, RACE_TRIALS  # the scenario's own figures

RACY = "nonce-check-not-atomic"
TARGET_DETECTION = 0.999


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def trials_needed(p: float) -> str:
    """Trials for a 99.9% chance that at least one detects a race each trial finds with probability *p*."""
    if p == 0:
        return "never"
    return "1" if p == 1 else str(math.ceil(math.log(1 - TARGET_DETECTION) / math.log(1 - p)))


def trials(wire: WireProfile, defects: tuple[str, ...], copies: int, count: int, workdir: Path) -> list[int]:
    """Accepted copies per trial: *count* trials of *copies* copies of one fresh packet, released together."""
    device = devices_from_entries([{"device_id": "EW-RACE", "hmac_key": "5a" * 32, "aes_key": "a5" * 16}])  # TEST ONLY
    keys = device["EW-RACE"]
    config = ServerConfig(db_path=workdir / f"race-{copies}-{'-'.join(defects) or 'sound'}.sqlite", devices=device,
                          admin_token="bench-admin", rate_limit=0, wire=wire)  # fmt: skip
    handle = ServerHandle(config, defects=defects).start()
    forger = Forger(wire)
    accepted = []
    try:
        for nonce in itertools.islice(itertools.count(wire.nonce.provisioned + 1), count):
            readings = Readings("EW-RACE", int(time.time()), tuple(Reading(r, 1.0) for r in REGISTERS))
            packet = forger.craft("EW-RACE", nonce, readings, key=keys)
            request = forger.request(packet, host=f"127.0.0.1:{handle.port}")
            results = replay_http(request, ("127.0.0.1", handle.port), times=copies, parallel=copies)
            outcomes = [wire.classify(r.status, r.response.body if r.response else b"").outcome for r in results]
            accepted.append(sum(o is Outcome.ACCEPTED for o in outcomes))
    finally:
        handle.stop()
    return accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per copy count and server (default 200)")
    parser.add_argument(
        "--copies", type=int, action="append", help=f"copies per trial (default 8 and {PARALLEL_COPIES})"
    )
    parser.add_argument("--wire-profile", default="ecowatt-api")
    args = parser.parse_args()
    wire = load_profile(args.wire_profile)
    print(f"wire profile {wire.name}; {args.trials} trials per row; the scenario runs {RACE_TRIALS} trials "
          f"of {PARALLEL_COPIES} copies")  # fmt: skip
    print(f"{'server':<24} {'copies':>6} {'detected':>9} {'p(one trial)':>13} {'95% interval':>15} "
          f"{f'p(miss in {RACE_TRIALS})':>14} {'trials for 99.9%':>17}")  # fmt: skip
    status = 0
    with tempfile.TemporaryDirectory(prefix="hil-race-") as tmp:
        for copies in args.copies or [8, PARALLEL_COPIES]:
            for defects in ((), (RACY,)):
                t0 = time.monotonic()
                per_trial = trials(wire, defects, copies, args.trials, Path(tmp))
                hits = sum(n > 1 for n in per_trial)
                p = hits / len(per_trial)
                lo, hi = wilson(hits, len(per_trial))
                miss = (1 - p) ** RACE_TRIALS
                needed = (
                    "never"
                    if p == 0
                    else ("1" if p == 1 else str(math.ceil(math.log(1 - TARGET_DETECTION) / math.log(1 - p))))
                )
                name = RACY if defects else "sound (baseline)"
                print(f"{name:<24} {copies:>6} {hits:>5}/{len(per_trial):<3} {p:>13.3f} {f'{lo:.3f}-{hi:.3f}':>15} "
                      f"{miss:>14.2e} {needed:>17}   ({time.monotonic() - t0:.1f} s)")  # fmt: skip
                if not defects and hits:
                    print(f"  the sound server accepted a copy twice in {hits} trials: a real race", file=sys.stderr)
                    status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
