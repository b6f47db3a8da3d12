"""The run folder on disk: its paths (:mod:`~gankit.runs.folder`), checkpoints, lock,
loading a run back (:mod:`~gankit.runs.load`) and summaries (:mod:`~gankit.runs.summary`).

Below ``training``, ``metrics`` and ``explore``: everything that reads or writes a run
folder goes through here.
"""
