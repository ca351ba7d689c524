"""CoAP and CoAPS (DTLS 1.2, PSK) on the harness side: a client for scenarios and a driver of libcoap's
``coap-client``/``coap-server`` (the SOP's tools, and the peers nobody here wrote).

- :mod:`hil.coap.endpoint`: ``CoapEndpoint`` (where a board serves CoAP or CoAPS) and ``connect``;
- :mod:`hil.coap.client`: ``CoapClient``, confirmable requests with RFC 7252 retransmission;
- :mod:`hil.coap.channel`: the datagram channels under it, plain UDP and DTLS (python-mbedtls);
- :mod:`hil.coap.wire`: bytes on the wire, per request and per handshake;
- :mod:`hil.coap.measure`: handshake time (median, p95) and bytes per request, beside the SOP's 3 s;
- :mod:`hil.coap.board`: a board's endpoints and where its PSK comes from (``coap_endpoints``);
- :mod:`hil.coap.libcoap`: libcoap's ``coap-client`` and ``coap-server`` as subprocesses;
- :mod:`hil.coap.options`: ``--hil-coap-host``, ``--hil-coap[s]-port``, ``--hil-coap-psk[-id]-env``.

Nothing here imports the device side (:mod:`hil.sim`): scenarios reach a board's CoAP the way they
reach a real one, over the network.
"""
