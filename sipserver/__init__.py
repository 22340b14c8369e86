"""sipserver: OpenSIPS 1.6 rebuilt in Python."""

__version__ = "0.1.0"
# What `sipserver -V` and the Server/User-Agent signature print, 1.6 style.
SERVER_NAME = "sipserver"
SERVER_SIGNATURE = f"{SERVER_NAME} ({__version__} (python/linux))"
