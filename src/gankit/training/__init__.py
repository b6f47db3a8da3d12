"""Training: the trainer (the clock), checkpoints, EMA, and the run directory.

Named ``training`` rather than ``train`` so that ``gankit.train`` stays the function:
a subpackage of that name would replace it as an attribute of ``gankit`` on import.
"""
