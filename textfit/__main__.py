from textfit.cli import run

run()
