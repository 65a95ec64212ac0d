"""The LoCoMo retrieval benchmark: the data's loader and scorer, and the baseline retriever.

Run by ``bench/memory_locomo.py``; nothing of it is part of the installed product.
"""
