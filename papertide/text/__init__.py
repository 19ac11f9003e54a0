"""Text machinery: tokenizing, BM25, sentence embeddings and vector search, as plain functions on numpy arrays."""
