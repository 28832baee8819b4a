"""Kernel backends. Only fastiqa/ops/<family>.py chooses between them."""
