"""kerashw: the ML course's HW2 studies (MNIST sweeps, THSR captchas) as reproducible Keras runs."""

__version__ = "0.1.0"
