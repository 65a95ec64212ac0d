"""The benchmark's own tests (bench/tests) import its modules as the scripts do.

A script run as ``python bench/NAME.py`` has ``bench/`` first on ``sys.path``; pytest's
default (prepend) import mode puts this file's folder there too, so ``import locomo``
means the same in both.
"""
