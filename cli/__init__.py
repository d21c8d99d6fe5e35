"""``aml-rollout``: the command-line client of the app's HTTP API (``cli.main``)."""
