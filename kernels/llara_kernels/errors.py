"""Errors of the kernels: a kernel called with inputs it cannot take.

`KernelError` is a ValueError (wrong shape, dtype, size or a missing GPU library), so callers
that validate inputs catch it as one; llara_edge reports it like its own errors.
"""


class KernelError(ValueError):
    """A kernel was given inputs of the wrong shape or dtype, or its backend is missing."""
