"""`python -m kerashw.cli`: the same as `kerashw` (the --workers processes start this way)."""
from kerashw.cli.main import main

main()
