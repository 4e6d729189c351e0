"""The cross-cutting analyses of the twin (docs/analyses.md): ``context`` (area context before a visit),
``housing`` (housing sites against nitrogen and zoning), ``priority`` (risk-based inspection priority),
``summary`` (area summary); ``common`` holds the access rule, ``raster`` the deposition SQL and ``report``
the printable area report."""
