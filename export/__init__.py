"""export"""

if __name__ != "llara_edge.export":  # bare import: llara_edge/toplevel.py
    from llara_edge.toplevel import defer

    defer(__name__, __file__)
