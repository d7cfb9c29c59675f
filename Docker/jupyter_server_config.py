"""Jupyter Server settings of the training image (copied to /opt/venv/etc/jupyter/).

Jupyter executes this file with ``c``, its configuration object, already defined. What it
changes is what a student would otherwise read as an error on the first start.
"""

import logging
import re

# Kernels talk to the server over Unix sockets inside the container: no TCP port is opened,
# so ipykernel has no reason to warn "Kernel is running over TCP without encryption".
c.KernelManager.transport = "ipc"  # noqa: F821

# No language server is installed: skip the scan that logs the long list of missing ones.
c.LanguageServerManager.autodetect = False  # noqa: F821


class DropHarmlessMessages(logging.Filter):
    """Drop the log records whose message matches ``pattern`` (a regular expression)."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.match(record.getMessage()) is None


# start-jupyter.sh prints the one login URL that works from the host (its published port
# and the token). Jupyter's own lines name the container's port and wildcard address.
logging.getLogger("ServerApp").addFilter(
    DropHarmlessMessages(r"\s*https?://\S*\?token=|Jupyter Server \S+ is running at:")
)
# Trust only decides whether a notebook's saved HTML/JS outputs render when it is opened;
# train.ipynb ships without outputs, so there is nothing to distrust.
logging.getLogger("ServerApp").addFilter(DropHarmlessMessages(r"Notebook \S+ is not trusted"))
# jupyter_server hands its millisecond ping settings to tornado, which reads them as
# seconds and warns that the timeout exceeds the interval; the pings themselves work.
logging.getLogger("tornado.general").addFilter(
    DropHarmlessMessages(r"The websocket_ping_timeout \(\d+\) cannot be longer")
)
