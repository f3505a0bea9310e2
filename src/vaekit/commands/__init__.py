"""Command groups of the ``vaekit`` CLI beyond train/evaluate/datasets; see ``vaekit.cli.COMMAND_MODULES``."""
