"""Sample data generator: realistic, deliberately messy landing files plus their ground truth.

python -m ml.synthetic --customers 5000 --seed 42 --out data/landing --truth data/ground_truth
"""

from ml.synthetic.generator import generate

__all__ = ["generate"]
