"""The web console (docs/web.md): ad-hoc, live and fleet queries in the browser.

Imported only when serving (``streamq run`` with ``[web] listen``, ``streamq serve``):
aiohttp costs the other commands nothing.
"""
