"""The example ASGI project: async views that enqueue jobs and report on them."""
