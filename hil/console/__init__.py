"""hil.console"""
