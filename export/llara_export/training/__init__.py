"""Training of the tiny LLaVA policy on simulator data (needs the `export` extra: torch).

Modules: `tokenizer` (a LLaMA-style sentencepiece model of the project's own text),
`data` (datagen JSON -> tokenised, label-masked LLaVA samples and batches), `train` (the
loop and its config). The closed-loop agent is `llara_edge.sim.policy_agent.PolicyAgent`
over `llara_export.torch_ref.TorchPolicy`. Nothing is imported eagerly:
`import llara_export.training` needs no torch.
"""
