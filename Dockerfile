# The game server (`game-server run`), for database_docker/docker-compose.yml's
# `game-server` service. The database comes from $GAME_DATABASE_URL.
FROM python:3.11-slim

RUN useradd --system --create-home --home-dir /srv/game --shell /usr/sbin/nologin game
WORKDIR /srv/game
COPY pyproject.toml setup.py README.md constraints.txt /src/
COPY game_server /src/game_server
RUN pip install --no-cache-dir -c /src/constraints.txt "/src[pg]" && rm -rf /src

USER game
ENV GAME_PORT=8000 PYTHONUNBUFFERED=1
EXPOSE 8000
# Healthy when the pages answer and the database holds a game (GET /api/health is 503 else).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GAME_PORT', '8000') + '/api/health', timeout=4)"]
CMD ["sh", "-c", "exec game-server run --host 0.0.0.0 --port \"$GAME_PORT\""]
