"""The LLaVA-1.5 reference model in torch, checkpoint loading/saving, the sentencepiece tokenizer.

Modules: `llava` (LlavaPolicyModel, TinyConfig, build_tiny), `checkpoint` (load_checkpoint,
save_original), `weights_io` (safe weight-file reading/writing), `tokenizer` (SpmTokenizer,
train_spm), `compact` (16-bit weights kept as stored), `shaped` (7B-shaped checkpoints).
The image preprocessing they share with the runtime is llara_edge.models.preprocess.
"""
