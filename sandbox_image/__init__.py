"""The Shuyu sandbox image: Dockerfile, server hardening files, analyst client, offline builder.

``build.py`` is the command that builds the image; ``builder/`` holds its parts.
"""
