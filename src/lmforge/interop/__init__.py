"""Other ecosystems: runs exported to Hugging Face `transformers`, ONNX and GGUF (llama.cpp) and checked
there by comparing outputs; Hugging Face Llama directories imported as runs. Weight mappings live in
models/convert.py; this package writes, reads and verifies the files."""
