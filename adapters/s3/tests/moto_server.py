"""The S3 API server the bazaar-s3 tests use: moto's server mode.

Usage: python moto_server.py PORT

Listens on 127.0.0.1:PORT, prints READY, and exits when its standard
input closes, so it never outlives the test process that started it.
"""

import logging
import sys

from moto.server import ThreadedMotoServer


def main():
    # One line per request would bury the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
    server.start()
    print("READY", flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
