"""hil.net: capture, flow analysis, replay, forgery and a MITM proxy for board traffic.

Modules (import what you need; scapy is only loaded by the ones that use it):

- :mod:`hil.net.capture`  per-test sniffer (ready before the test acts, drained at stop)
- :mod:`hil.net.relay`    recording TCP/UDP relay: the capture fallback without CAP_NET_RAW
- :mod:`hil.net.fallback` :func:`open_capture`: sniffer when possible, else relay, said once
- :mod:`hil.net.flows`    TCP reassembly per direction, UDP datagrams, HTTP exchanges
- :mod:`hil.net.http`     HTTP/1.1 message parsing (Content-Length, chunked, keep-alive)
- :mod:`hil.net.records`  TLS/DTLS record headers
- :mod:`hil.net.search`   plaintext search over reassembled streams
- :mod:`hil.net.summary`  per-flow summaries for the report
- :mod:`hil.net.replay`   HTTP and UDP replay (N times, parallel, other target)
- :mod:`hil.net.forge`    forged upload packets (with/without the key)
- :mod:`hil.net.mitm`     HTTP man-in-the-middle proxy with :mod:`hil.net.rules`
- :mod:`hil.net.synth`    synthesised frames (relay pcaps, test captures)
"""
