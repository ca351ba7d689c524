"""hil.board"""
