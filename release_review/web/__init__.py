"""The review service over HTTP: API routes for the analyst client, pages for reviewers.

Run by the hub as the managed service ``review`` (``python -m release_review.web``) at
``/services/review/``; see ``main.py`` for how the app is assembled.
"""
