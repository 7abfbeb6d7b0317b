"""forq's Python client: enqueue, look up, wait for and cancel forq jobs from a Python backend
(docs/clients.md). `forq.Client` is synchronous; `forq.asyncio.Client` is the same for asyncio.
"""
from ._client import Cancelled, Client, Enqueued
from ._core import SCHEMA, Job
from .errors import ForqError, InvalidJob, SchemaMismatch

__all__ = ["Client", "Enqueued", "Cancelled", "Job", "ForqError", "InvalidJob", "SchemaMismatch",
           "SCHEMA"]
__version__ = "0.1.0"
