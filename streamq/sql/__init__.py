"""The SQL engine: table specs, the APSW virtual-table adapter, connections, functions, plugins.

It knows no table by name; tables (built-in and third-party) register through
:func:`streamq.table` and the ``streamq.tables`` entry-point group.
"""
