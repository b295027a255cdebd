"""SWE-Protégé study kit: small SWE agents that learn to selectively ask an expert.

Importing this package has no side effects: it prints nothing, writes nothing and reads
no `.env` file. Its layers are subpackages, each importing only from those below it
(checked by import-linter, `make lint`): core < tasks < env < agent < models < stages | bugbench < app.
"""

__version__ = "0.1.0"
