"""llara-edge"""
