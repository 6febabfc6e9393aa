"""Allow `python -m game_server`."""

from game_server.cli import main

if __name__ == "__main__":
    main()
