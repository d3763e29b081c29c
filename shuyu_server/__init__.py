"""Server-side foundation shared by every area: the settings object and the `shuyu` command.

It imports nothing from the areas at module level; each area registers its own command group.
"""
