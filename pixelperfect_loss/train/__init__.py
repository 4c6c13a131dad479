"""Training: ``python -m pixelperfect_loss.train`` (see ``__main__``), one module per network."""
