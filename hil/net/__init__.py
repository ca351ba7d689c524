"""hil.net"""
