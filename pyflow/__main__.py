"""python -m pyflow: the pyflow command line."""
from .cli import main

if __name__ == "__main__":
    main()
