"""The command line: ``streamq query|shell|tail|tables|schema|run|fleet``; the entry point is
:func:`streamq.cli.command.main`."""
