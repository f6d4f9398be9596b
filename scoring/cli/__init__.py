"""The subcommands of ``python -m scoring``, one module each: ``add_parser(subparsers)`` registers the
subcommand and its arguments and returns its parser; ``run(args, settings) -> int`` carries it out and returns
the exit code. What they share lives in ``common``; ``scoring/__main__.py`` assembles the parser."""
