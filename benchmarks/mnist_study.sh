#!/usr/bin/env bash
# The full HW2-1 study on the full data, 10 epochs a run; prints the stored table.
set -euo pipefail
store="${1:-benchmarks/mnist-runs}"
time kerashw train --exp all --store "$store"
kerashw results --exp all --store "$store" --format markdown
