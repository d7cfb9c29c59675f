"""Container healthcheck without curl: exit 0 when the URL answers 2xx, 1 otherwise.

Usage: python healthcheck.py http://127.0.0.1:8000/health
"""

import sys
import urllib.error
import urllib.request


def is_healthy(url: str, timeout: float = 4.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return False


if __name__ == "__main__":
    sys.exit(0 if is_healthy(sys.argv[1]) else 1)
