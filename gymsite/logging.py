"""A log filter bounding each record's message: clients must not be able to grow the log at will."""

import logging


class TruncateMessage(logging.Filter):
    """Cuts a record's final message (format arguments applied) to `max_chars`.

    Libraries log what clients send (the mcp SDK logs an unknown tool's name twice): a 4 MB
    name would be 8 MB of log. On every handler, so no handler sees the full message first.
    """

    def __init__(self, max_chars: int = 500):
        super().__init__()
        self.max_chars = max_chars

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > self.max_chars:
            record.msg = f"{message[:self.max_chars]}... [{len(message) - self.max_chars} more characters]"
            record.args = None
        return True
