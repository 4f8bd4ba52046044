"""The captcha's shape, in one place: every other module reads these."""
from __future__ import annotations

ALPHABET = "234579ACFHKMNPQRTYZ"  # the 19 symbols THSR uses (no 0/O, 1/I, 6/G, 8/B ...)
NUM_CLASSES = len(ALPHABET)
HEADS = ("char_1", "char_2", "char_3", "char_4")  # one softmax head per position, as in the TA baseline
LENGTH = len(HEADS)
HEIGHT, WIDTH = 50, 130  # every variant's output size (the report's resize)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
REPORT_SPLIT = (4000, 1000, 3000)  # the report's train:val:test
SYNTH_COUNT = 8000  # the synthetic default's size (the report's 8,000 images)
NAME = "captcha"  # the task's name in specs, run ids and the store
