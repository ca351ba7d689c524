"""hil.flashing"""
