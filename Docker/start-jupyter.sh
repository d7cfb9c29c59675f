#!/bin/sh
# Jupyter container command: train the default models once (first start with an
# empty models volume), then start Jupyter Lab. A failed bootstrap is logged loudly
# but never keeps Jupyter Lab from starting: the notebook can still be run by hand.
set -u

if ! python /opt/penguin/bootstrap_models.py; then
    echo "bootstrap: FAILED - the API will list no models until train.ipynb is run" \
         "in Jupyter Lab (see the traceback above)" >&2
fi

if [ -z "${JUPYTER_TOKEN:-}" ]; then
    echo "JUPYTER_TOKEN is not set: Jupyter generates a random token and prints the login" \
         "URL below (.../lab?token=...; use your JUPYTER_PORT if you changed it). For a fixed" \
         "token, set JUPYTER_TOKEN in Docker/.env (see Docker/.env.example)." >&2
fi

# The token is read by Jupyter from the JUPYTER_TOKEN environment variable (the default
# of IdentityProvider.token), so it never appears on a command line.
exec jupyter lab \
    --ip=0.0.0.0 \
    --port=8888 \
    --no-browser \
    --ServerApp.root_dir="${NOTEBOOKS_DIR:-/app/notebooks}"
