"""Release review: the only way out of a sandbox (checks, differential privacy, review, packages)."""
