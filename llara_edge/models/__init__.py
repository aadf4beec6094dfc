"""What the runtime needs of a model besides its engines: image preprocessing and the tokenizer.

Modules: `preprocess` (LLaVA/LLaRA image preprocessing, NumPy + PIL), `gguf_vocab` (a GGUF's
vocabulary read without gguf-py) and `gguf_tokenizer` (GgufTokenizer: LLaVA's prompt
tokenisation over that vocabulary, through llama.cpp). The torch reference model, checkpoint
loading and the sentencepiece tokenizer are the export toolchain's (llara_export.models).
"""
