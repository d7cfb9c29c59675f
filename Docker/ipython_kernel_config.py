"""IPython kernel settings of the training image (copied to /opt/venv/etc/ipython/).

IPython executes this file in every kernel it starts. Jupyter Lab's kernels use IPC (see
jupyter_server_config.py), but ``jupyter execute`` starts its kernel over TCP on 127.0.0.1
inside the container, which no one outside the container can reach: the kernel's warning
that this TCP traffic is not encrypted says nothing a student can act on.
"""

import logging
import re


class DropHarmlessMessages(logging.Filter):
    """Drop the log records whose message matches ``pattern`` (a regular expression)."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.match(record.getMessage()) is None


logging.getLogger("IPKernelApp").addFilter(
    DropHarmlessMessages(r"Kernel is running over TCP without encryption")
)
