"""The LLaVA-1.5 reference model in torch, checkpoint loading/saving, the checkpoint's tokenizer.

Modules: `llava` (LlavaPolicyModel, TinyConfig, build_tiny), `checkpoint` (load_checkpoint,
save_original), `weights_io` (safe weight-file reading/writing), `tokenizer` (SpmTokenizer,
tokenizer_from_dir, train_spm), `hf_tokenizer` (HfTokenizer: a tokenizer.json), `compact`
(16-bit weights kept as stored), `shaped` (7B-shaped checkpoints).
The image preprocessing they share with the runtime is llara_edge.models.preprocess.
"""
