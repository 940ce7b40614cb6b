"""Pure readers of the host: /proc, /sys, /etc, netlink and package databases.

No SQL and no asyncio here; tables and sources build on these. A reader takes
its root directory as a parameter where it can, so tests feed it captured files.
"""
