"""The method zoo: masks set in rounds at fixed iterations (``mask_method``), training runs to
``max_iter``; each file is one method (docs/methods/)."""
