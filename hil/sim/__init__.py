"""hil.sim"""
