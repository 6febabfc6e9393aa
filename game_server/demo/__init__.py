"""The demo: a whole game on this machine with bot teams (`game-server demo`, docs/DEMO.md).

Owns the run of a demo game (`run`) and the bot teams (`bots`: their variants, training,
retraining and processes).

May import: everything; nothing imports it but `cli`.
"""
