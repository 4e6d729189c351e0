"""The ``twin`` command line, on top of every other package: ``cli.main`` builds the app; one module per
command group; ``cli.common`` holds the one error/exit and settings helper they share."""
