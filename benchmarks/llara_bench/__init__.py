"""llara_bench (the benchmarks/ component): latency and accuracy suites whose thresholds are gates.

`llara-edge bench ...` (cli.py, found through the `llara_edge.commands` entry point). The
quick latency suite runs on a robot install (runtime only); the baselines that need torch
(HF generate) or the export toolchain are imported where used and skipped, with the reason
recorded, when absent.
"""
