"""hil.server"""
