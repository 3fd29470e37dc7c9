"""One module per page of the workspace (and ``api``): each holds a ``router``."""
