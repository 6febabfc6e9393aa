# The game server (`game-server run`), for database_docker/docker-compose.yml's
# `game-server` service. The database comes from $GAME_DATABASE_URL.
FROM python:3.11-slim

RUN useradd --system --create-home --home-dir /srv/game --shell /usr/sbin/nologin game
WORKDIR /srv/game
COPY pyproject.toml setup.py README.md /src/
COPY game_server /src/game_server
RUN pip install --no-cache-dir "/src[pg]" && rm -rf /src

USER game
ENV GAME_PORT=8000 PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["sh", "-c", "exec game-server run --host 0.0.0.0 --port \"$GAME_PORT\""]
