"""Conventions that data sources and model families share, in one leaf module.

- Images are float32 in [-1, 1], shape (C, H, W); toy points are float32, shape (D,).
- Labels are int64. :data:`NO_LABEL` marks an item (or a pixel of a label map) that has
  no label: sources without labels use it, and losses ignore it.
- Seeds are integers in ``[0, MAX_SEED]``: numpy's range (``np.random.seed``,
  scikit-learn's ``random_state``), which torch's generators also accept.
"""

NO_LABEL = -1

#: Text tokens: ``char`` level splits into characters; ``word`` level into words, runs of
#: white space and single punctuation marks, so that joining the tokens gives the text back.
WORD_TOKEN = r"\w+|\s+|[^\w\s]"
#: The word-level token that stands for every word outside the vocabulary.
UNKNOWN_TOKEN = "<unk>"

MAX_SEED = 2**32 - 1
