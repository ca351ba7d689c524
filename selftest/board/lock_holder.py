"""Helper process for the lock self-test: hold a board lock until stdin closes."""

import sys

from hil.board.lock import BoardLock

lock = BoardLock("dut0", sys.argv[1], sys.argv[2], owner="test_other_process[holder]")
lock.acquire(timeout=5)
print("locked", flush=True)
sys.stdin.read()  # released when the test closes our stdin (or kills us)
lock.release()
