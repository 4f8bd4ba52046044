"""HW2-2, the captcha study: constants, labelled folders and the synthetic default,
preprocessing (arc removal) and its on-disk cache, the four-head task, the preview."""
