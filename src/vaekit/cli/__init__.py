"""The ``vaekit`` command line: a thin skin over the library. :mod:`.app` parses the arguments and
dispatches; each other module adds one group of commands; :mod:`.render` owns progress bars and
tables (the only code in vaekit that prints)."""
