#!/bin/sh
# Jupyter container command: train the default models once (first start with an
# empty models volume), then start Jupyter Lab and print the one URL to open.
# A failed bootstrap is logged loudly but never keeps Jupyter Lab from starting:
# the notebook can still be run by hand.
set -u

if ! python /opt/penguin/bootstrap_models.py; then
    echo "bootstrap: FAILED - the API will list no models until train.ipynb is run" \
         "in Jupyter Lab (see the traceback above)" >&2
fi

# The host port Compose publishes (JUPYTER_PORT); inside, Jupyter always listens on 8888.
HOST_PORT="${JUPYTER_PORT:-8888}"
if [ -z "${JUPYTER_TOKEN:-}" ]; then
    # A fresh random token at every start, made here so that the URL printed below carries it.
    JUPYTER_TOKEN="$(python -c 'import secrets; print(secrets.token_hex(24))')"
    export JUPYTER_TOKEN
    LOGIN_URL="http://127.0.0.1:${HOST_PORT}/lab?token=${JUPYTER_TOKEN}"
    TOKEN_NOTE="(a new token at every start; set JUPYTER_TOKEN in Docker/.env for a fixed one)"
else
    LOGIN_URL="http://127.0.0.1:${HOST_PORT}/lab"
    TOKEN_NOTE="(log in with the JUPYTER_TOKEN you set)"
fi

announce_when_ready() {
    tries=0
    until python /opt/penguin/healthcheck.py http://127.0.0.1:8888/api 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 120 ]; then
            echo "Jupyter Lab did not answer within 120 s; see the messages above." >&2
            return 1
        fi
        sleep 1
    done
    echo "Jupyter Lab is ready: ${LOGIN_URL} ${TOKEN_NOTE}"
}

# Detached (double fork), so that it ends up a child of the container's init, which reaps it.
( announce_when_ready & )

# The token is read by Jupyter from the JUPYTER_TOKEN environment variable (the default
# of IdentityProvider.token), so it never appears on a command line.
exec jupyter lab \
    --ip=0.0.0.0 \
    --port=8888 \
    --no-browser \
    --ServerApp.root_dir="${NOTEBOOKS_DIR:-/app/notebooks}"
