"""Static word vectors: word2vec (skip-gram/CBOW, negative sampling or hierarchical softmax) and GloVe,
trained by compiled (numba) kernels over the same prepared corpora as every other family; evaluation on
the standard similarity and analogy sets; export to the word2vec formats; initialising neural models."""
