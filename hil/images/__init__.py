"""hil.images"""
