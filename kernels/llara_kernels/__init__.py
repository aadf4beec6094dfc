"""llara_kernels (the kernels/ component): the hot kernels of a control step, each beside a
plain NumPy reference.

- `masked_argmax`: greedy choice among the tokens a grammar mask allows (numba; reference
  `masked_argmax_ref`; kernels/llara_kernels/cuda/masked_argmax.cu, kernels/llara_kernels/cpp for
  the C++ reference);
- `projector`: LLaVA's fused vision projector (drop CLS, GEMM + bias + GELU, GEMM + bias)
  written into the LLM's input buffer (NumPy reference and CPU path); `projector_triton`,
  kernels/llara_kernels/cuda/fused_projector.cu and the TensorRT plugin (`trt_plugin`) for GPUs.
numba, triton, torch and tensorrt are imported only by the modules that use them, so
`import llara_kernels` stays cheap. Errors: `llara_kernels.errors.KernelError`.
"""
