# The example project's image, used by compose.yaml for web, worker and migrate.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir 'uv>=0.5,<1'
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY jobs ./jobs
RUN uv sync --frozen --no-dev --extra server
COPY . .
ENV PATH=/opt/venv/bin:$PATH DJANGO_SETTINGS_MODULE=settings.prod
EXPOSE 8000
CMD ["uvicorn", "webproject.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
