"""Networks only (``nn.Module``s); training lives in :mod:`impasto.train`, files in :mod:`impasto.models.files`."""
