"""`python -m protege` is the `protege` command."""

from protege.app.cli import main

if __name__ == "__main__":
    main()
