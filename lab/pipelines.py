"""Registers the pipeline subcommands (bench, finetune, translate, c2rust) on the `lab` CLI."""
