"""Task data for fine-tuning: labelled examples read from JSONL/CSV/Parquet, CoNLL and SQuAD-layout files
(or the hub), split by file name or by a hash of the text, and encoded for a backbone's tokenizer."""
