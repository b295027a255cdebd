"""SWE-Protégé study kit: small SWE agents that learn to selectively ask an expert.

Importing this package has no side effects: it prints nothing, writes nothing and reads
no `.env` file. Stage modules are imported explicitly (``from protege import tasks``).
"""

__version__ = "0.1.0"
