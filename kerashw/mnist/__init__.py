"""HW2-1, the MNIST study: where the digits come from (source) and the task (splits, pipeline)."""
