"""hil.coap"""
