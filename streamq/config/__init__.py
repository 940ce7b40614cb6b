"""Configuration: TOML loading and validation that names the file, line and key path of every mistake.

- :mod:`.options`: the schema language (``option()``, checks, the option bases components extend);
- :mod:`.sections`: the typed sections of the engine and the daemon, and :class:`Config`;
- :mod:`.validation`: typed sections from raw TOML, errors with file, line and key path;
- :mod:`.queries`: [queries.NAME] and osquery pack files;
- :mod:`.loader`: ``load``/``parse``, asking the source and sink registries for their options.
"""
