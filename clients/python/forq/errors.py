"""forq's errors: every one is a ForqError; a job refused before anything reached Redis is an
InvalidJob (also a ValueError), in the same words as `forq enqueue`."""


class ForqError(Exception):
    """Something forq's protocol could not do; the message says what."""


class InvalidJob(ForqError, ValueError):
    """The job (or queue name, id, option) breaks a rule of docs/protocol.md; nothing was added."""


class SchemaMismatch(ForqError):
    """The queue in Redis was written with a protocol schema this client does not speak."""
