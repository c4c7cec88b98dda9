FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/data
COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY service ./service
COPY alembic ./alembic
COPY templates ./templates
COPY samples ./samples
RUN pip install --no-cache-dir -c requirements.lock ".[semantic]"
VOLUME ["/data"]
EXPOSE 8000
CMD ["sh", "-c", "paperboy db upgrade && paperboy run"]
