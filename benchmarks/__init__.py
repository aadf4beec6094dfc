"""benchmarks"""

if __name__ != "llara_edge.benchmarks":  # bare import: llara_edge/toplevel.py
    from llara_edge.toplevel import defer

    defer(__name__, __file__)
