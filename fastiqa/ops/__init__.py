"""Registered ops (torch.library), one module per family."""
