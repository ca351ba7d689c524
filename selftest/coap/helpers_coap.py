"""Constants of the CoAP self-tests."""

# The SOP's documented PSK (its coap-server -k/-h and coap-client -u/-k commands): TEST ONLY
IDENTITY = "iotlab2024"
KEY = "secretkey123456"
