"""Parts of the offline image builder: Docker CLI, Debian base, wheelhouse, build context."""
