"""Named configurations of the package's own training runs, one small file each.

Each module's docstring gives the command, what it produces and what it costs; `get_config()`
returns its frozen config, `get_config(smoke=True)` the seconds-long variant the tests run.
"""
