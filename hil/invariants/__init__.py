"""hil.invariants: properties every scenario must leave intact, checked after each one without being
asked (:mod:`hil.plugin.invariants`): the server's records agree with its answers, the device commits
a nonce before it sends it, no provisioned secret reaches the console."""
