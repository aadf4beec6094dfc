"""The LLaVA-1.5 reference model in torch, checkpoint loading/saving and preprocessing.

Modules: `llava` (LlavaPolicyModel, TinyConfig, build_tiny), `checkpoint` (load_checkpoint,
save_original), `weights_io` (safe weight-file reading/writing), `tokenizer` (SpmTokenizer,
train_spm), `preprocess` (LLaVA/LLaRA image preprocessing). `preprocess` needs only NumPy and
PIL (the runtime reuses it); the others need torch / transformers / sentencepiece (the
`export` extra), so nothing is imported here eagerly.
"""
