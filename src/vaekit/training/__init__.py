"""Everything that makes a run: the config, the training loop, devices and distribution, checkpoints
and the run folder. Submodules are imported on use, so ``vaekit --help`` never loads torch."""
