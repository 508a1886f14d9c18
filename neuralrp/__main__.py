from neuralrp.cli import cli

cli()
