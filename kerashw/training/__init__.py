"""Training: the one compile/fit (train.py), its callbacks, stop requests, precision and devices."""
