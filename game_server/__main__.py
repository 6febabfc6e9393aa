"""Allow `python -m game_server`."""

from game_server.cli.main import main

if __name__ == "__main__":
    main()
