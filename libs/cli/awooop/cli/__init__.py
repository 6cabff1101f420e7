"""The awooop command: the composition root."""
