"""A team's login shell: the profile snippet `users create` writes and `users delete` removes.

`/etc/profile.d/workshop-<user>.sh` (root's, mode 0644, no secret in it), read by every
login shell (`/etc/profile`), acts only in the team user's own: it puts the teams' shared
virtual environment (`--team-venv`, default /opt/workshop/venv) first on PATH and exports
the keys of the team's `~/participant_starter/.env` (starter.ENV_KEYS: PORT, JUPYTER_PORT,
DEBUG_PORT, DATABASE_URL, GAME_URL, TEAM_TOKEN, TEAM_NAME). The .env is never sourced: a
`while read` loop takes only those keys, as text (nothing in a value is run), from at most
the first 64 KiB of a regular file; anything else (a FIFO, a device, a folder, garbage) is
skipped, so a broken .env never breaks a login. The values are read at login: a new login
shell sees a changed .env.
"""

import shlex

from game_server.accounts.config import Settings
from game_server.accounts.starter import ENV_KEYS

_TEMPLATE = r"""# Written by `game-server users create` for {user}; `users delete` removes it.
# Only in {user}'s login shells: the teams' Python first on PATH, and the team's settings
# ({keys_text}) read from its own .env: only those keys, as text, never sourced.
if [ "${{USER:-}}" = {q_user} ] && [ "$(id -un 2>/dev/null)" = {q_user} ]; then
  case ":${{PATH:-}}:" in
    *:{q_bin}:*) ;;
    *) PATH={q_bin}"${{PATH:+:$PATH}}"; export PATH ;;
  esac
  _gs_env={q_env}
  _gs_text=
  if [ -f "$_gs_env" ] && [ -r "$_gs_env" ]; then
    _gs_text=$(head -c 65536 -- "$_gs_env" 2>/dev/null) || _gs_text=
  fi
  _gs_cr=$(printf '\r')
  while IFS= read -r _gs_line; do
    _gs_line=${{_gs_line%"$_gs_cr"}}
    _gs_line=${{_gs_line#export }}
    _gs_key=${{_gs_line%%=*}}
    [ "$_gs_key" = "$_gs_line" ] && continue
    _gs_value=${{_gs_line#*=}}
    case $_gs_key in
      {keys_case})
        case $_gs_value in
          \"*\")
            _gs_value=${{_gs_value#\"}}; _gs_value=${{_gs_value%\"}}
            case $_gs_value in
              *\\*) _gs_value=$(printf '%s\n' "$_gs_value" | sed 's/\\\(.\)/\1/g') ;;
            esac ;;
          \'*\') _gs_value=${{_gs_value#\'}}; _gs_value=${{_gs_value%\'}} ;;
        esac
        export "$_gs_key=$_gs_value" ;;
    esac
  done <<_GS_EOF
$_gs_text
_GS_EOF
  unset _gs_env _gs_text _gs_cr _gs_line _gs_key _gs_value
fi
"""


def profile_text(settings: Settings, user: str, home: str) -> str:
    """The login-shell snippet of team user `user` (home `home`): POSIX sh, no secret."""
    return _TEMPLATE.format(
        user=user,
        q_user=shlex.quote(user),
        q_bin=shlex.quote(settings.team_venv.rstrip("/") + "/bin"),
        q_env=shlex.quote(f"{home}/participant_starter/.env"),
        keys_text=", ".join(ENV_KEYS),
        keys_case="|".join(ENV_KEYS),
    )
