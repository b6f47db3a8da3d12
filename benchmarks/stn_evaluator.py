"""The evaluator option ``--arch stn`` on ``digits-distorted``: test accuracy and
parameter count of the plain and the STN evaluator, and the Spearman correlation of
the rotation in the STN's θ with the rotation applied to each test image. Reads both
evaluators from the cache; train them first:

    gankit evaluator train digits-distorted --arch cnn
    gankit evaluator train digits-distorted --arch stn
    python benchmarks/stn_evaluator.py
"""

import torch
from scipy.stats import spearmanr

from gankit.data import load_dataset
from gankit.metrics.features import load_evaluator
from gankit.stn import rotation_degrees

bundle = load_dataset("digits-distorted")
x = bundle.test.tensors[0]
for arch in ("cnn", "stn"):
    evaluator = load_evaluator("digits-distorted", arch=arch)
    count = sum(p.numel() for p in evaluator.net.parameters())
    print(f"{arch}: {count:,} parameters, test accuracy {evaluator.test_accuracy:.4f}")
with torch.no_grad():
    predicted = rotation_degrees(evaluator.net.transformer.transform(x))
rho = spearmanr(predicted.numpy(), bundle.extra["test_rotation"].numpy()).statistic
print(f"stn: Spearman(rotation in θ, applied rotation) = {rho:+.3f} on {len(x)} test images")
print("python benchmarks/stn_evaluator.py")
