"""The commands of ``python -m data | scoring | ranking``, one module each (``add_parser``, ``run``); what they
share is in ``args`` (every program) and ``common`` (the scoring commands); ``programs`` assembles the three."""
