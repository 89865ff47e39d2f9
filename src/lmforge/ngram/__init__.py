"""Count-based n-gram language models: counting, Kneser-Ney / Witten-Bell / add-k estimation, ARPA I/O,
queries and sampling. Counting models write the same run directory as the neural families (config.toml
with a RunConfig), with their arrays in safetensors; they do not go through the SGD loop."""
