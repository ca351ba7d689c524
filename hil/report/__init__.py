"""hil.report"""
