"""hil.protocol"""
