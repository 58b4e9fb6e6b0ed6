"""The wire to Redis: connections, packed commands, Lua scripts, batching, key names.

A leaf: it imports nothing of the rest of `jobs` but settings, serialization and
exceptions, so the backend, the worker and the dashboard all talk to Redis
through it.
"""
